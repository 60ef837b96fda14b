"""``/collections/{name}/images`` and ``/records``: upload, browse, fetch and delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from pixseek.api.deps import collection, decode_slot, settings, workspace
from pixseek.api.schemas.images import Ids, ImagesIn
from pixseek.api.schemas.records import RecordOut, RecordPage, record_out
from pixseek.api.schemas.search import decode_base64
from pixseek.collection.collection import Collection
from pixseek.collection.media import source_file, thumbnail_data
from pixseek.core.errors import InvalidInputError
from pixseek.core.filters import Filter
from pixseek.ingest.tasks import ObjectSpec
from pixseek.ingest.uploads import Upload, add_images, remove_image
from pixseek.jobs.copy_views import keeps_views

router = APIRouter(prefix="/collections/{name}", tags=["images"])
Found = Annotated[Collection, Depends(collection)]


async def _uploads(request: Request, limit: int) -> list[Upload]:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        files = [
            value
            for value in form.getlist("files") + form.getlist("file")
            if isinstance(value, UploadFile)
        ]
        if not files:
            raise InvalidInputError("multipart upload has no 'files' part")
        uploads = []
        for upload in files:
            data = await upload.read(limit + 1)
            _check_size(len(data), limit)
            uploads.append(Upload(data=data, filename=upload.filename or ""))
        return uploads
    try:
        body = ImagesIn.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from exc
    uploads = []
    for image in body.images:
        data = decode_base64(image.data, image.filename or "image")
        _check_size(len(data), limit)
        boxes = [
            ObjectSpec(tuple(b.box), b.label, b.source, b.confidence)  # type: ignore[arg-type]
            for b in image.boxes
        ]
        uploads.append(Upload(data, image.metadata, boxes, image.filename))
    return uploads


def _check_size(size: int, limit: int) -> None:
    if size > limit:
        raise HTTPException(413, f"upload over the {limit}-byte limit")


def _add_bounded(request: Request, name: str, uploads: list[Upload]) -> list[str]:
    """At most ``max_concurrent_uploads`` decodes at once: memory stays bounded. The
    collection is taken once the body has arrived, so a slow client never holds up
    its deletion. A collection that keeps the views copy detection compares has those of
    the new images made by a views job, as ``pixseek index`` makes them: match then finds
    crops of them too, and the upload does not wait for seven embeddings an image."""
    with workspace(request).using(name) as found, decode_slot(request):
        ids = add_images(found, uploads)
        if ids and keeps_views(found):
            request.app.state.jobs.submit_once(name, "views", {"make": False})
        return ids


UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "content": {
            "application/json": {"schema": ImagesIn.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "files": {"type": "array", "items": {"type": "string", "format": "binary"}}
                    },
                }
            },
        }
    }
}


@router.post("/images", response_model=Ids, openapi_extra=UPLOAD_BODY)
async def add_collection_images(request: Request, name: str) -> Ids:
    await run_in_threadpool(workspace(request).get, name)  # 404 before reading the body
    uploads = await _uploads(request, settings(request).max_upload_bytes)
    ids = await run_in_threadpool(_add_bounded, request, name, uploads)
    return Ids(ids=ids)


@router.get("/images", response_model=RecordPage)
def list_images(
    found: Found,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    label: str | None = None,
) -> dict[str, Any]:
    """Images, optionally those labelled ``label`` or holding an object labelled so."""
    flt = Filter.where({"kind": "image"})
    if label:
        with_objects = found.image_ids_with_objects(label)
        labelled = [r.id for r in found.records(Filter.where({"kind": "image", "label": label}))]
        ids = list(dict.fromkeys(labelled + with_objects))
        if not ids:
            return {"records": [], "offset": offset, "total": 0}
        flt = flt.and_(Filter.where({"id": ids}))
    records = found.page(flt, offset, limit)
    return {
        "records": [record_out(r) for r in records],
        "offset": offset,
        "total": found.count(flt),
    }


@router.delete("/images/{image_id}", status_code=204)
def delete_image(found: Found, image_id: str) -> None:
    remove_image(found, image_id)


@router.get("/records/{record_id}", response_model=RecordOut)
def get_record(found: Found, record_id: str) -> dict[str, Any]:
    return record_out(found.get(record_id))


@router.get("/images/{image_id}/file", response_class=FileResponse)
def image_file(found: Found, image_id: str) -> FileResponse:
    return FileResponse(source_file(found, image_id))


@router.get("/images/{record_id}/thumbnail", response_class=Response)
def image_thumbnail(
    request: Request, found: Found, record_id: str, size: Annotated[int, Query()] = 256
) -> Response:
    """A JPEG at the smallest of the fixed sizes that is at least ``size``."""
    data = thumbnail_data(found, record_id, size, settings(request).thumbnail_cache_bytes)
    return Response(
        data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"}
    )
