"""Images: safe decoding, boxes and crops, thumbnails."""
