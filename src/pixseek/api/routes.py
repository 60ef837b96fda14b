"""API routes: parse with pydantic, call the library, shape the response."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from pixseek.api.queries import decode_base64, search_terms
from pixseek.api.schemas import (
    CollectionCreate,
    CollectionSummary,
    HitOut,
    Hits,
    Ids,
    ImagesIn,
    Labels,
    RecordPage,
    SearchIn,
)
from pixseek.collection import Collection
from pixseek.errors import InvalidInputError
from pixseek.ingest.sources import ObjectSpec
from pixseek.records import Hit, Record
from pixseek.search import Feedback, SearchOptions, search
from pixseek.store.filters import Filter
from pixseek.thumbnails import source_file, thumbnail
from pixseek.uploads import Upload, add_images, remove_image
from pixseek.workspace import Workspace

router = APIRouter(prefix="/collections")


def workspace(request: Request) -> Workspace:
    return request.app.state.workspace  # type: ignore[no-any-return]


def summary(name: str, collection: Collection) -> CollectionSummary:
    info = collection.info(failure_limit=0)
    return CollectionSummary(
        name=name,
        model=info.model,
        dim=info.dim,
        images=info.images,
        objects=info.objects,
        failures=info.failures,
    )


def hit_out(hit: Hit) -> HitOut:
    return HitOut.model_validate(hit.to_dict())


def record_out(record: Record) -> HitOut:
    return hit_out(Hit.from_record(record, 0.0))


@router.get("", response_model=list[CollectionSummary])
def list_collections(request: Request) -> list[CollectionSummary]:
    space = workspace(request)
    return [summary(name, space.get(name)) for name in space.names()]


@router.post("", response_model=CollectionSummary, status_code=201)
def create_collection(request: Request, body: CollectionCreate) -> CollectionSummary:
    return summary(body.name, workspace(request).create(body.name, body.model))


@router.get("/{name}", response_model=CollectionSummary)
def get_collection(request: Request, name: str) -> CollectionSummary:
    return summary(name, workspace(request).get(name))


@router.delete("/{name}", status_code=204)
def delete_collection(request: Request, name: str) -> None:
    workspace(request).delete(name)


async def _uploads(request: Request) -> list[Upload]:
    limit = request.app.state.settings.max_upload_bytes
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
        boxes = [ObjectSpec(tuple(b.box), b.label, b.source, b.score) for b in image.boxes]  # type: ignore[arg-type]
        uploads.append(Upload(data, image.metadata, boxes, image.filename))
    return uploads


def _check_size(size: int, limit: int) -> None:
    if size > limit:
        raise HTTPException(413, f"upload over the {limit}-byte limit")


@router.post(
    "/{name}/images",
    response_model=Ids,
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": ImagesIn.model_json_schema()},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "files": {
                                "type": "array",
                                "items": {"type": "string", "format": "binary"},
                            }
                        },
                    }
                },
            }
        }
    },
)
async def add_collection_images(request: Request, name: str) -> Ids:
    collection = workspace(request).get(name)
    uploads = await _uploads(request)
    ids = await run_in_threadpool(add_images, collection, uploads)
    return Ids(ids=ids)


@router.get("/{name}/images", response_model=RecordPage)
def list_images(
    request: Request,
    name: str,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    label: str | None = None,
) -> RecordPage:
    collection = workspace(request).get(name)
    flt = Filter.where({"kind": "image", **({"label": label} if label else {})})
    records = collection.page(flt, offset, limit)
    return RecordPage(
        records=[record_out(r) for r in records], offset=offset, total=collection.count(flt)
    )


@router.delete("/{name}/images/{image_id}", status_code=204)
def delete_image(request: Request, name: str, image_id: str) -> None:
    remove_image(workspace(request).get(name), image_id)


@router.get("/{name}/records/{record_id}", response_model=HitOut)
def get_record(request: Request, name: str, record_id: str) -> HitOut:
    return record_out(workspace(request).get(name).get(record_id))


@router.get("/{name}/labels", response_model=Labels)
def labels(request: Request, name: str, kind: str | None = None) -> Labels:
    if kind not in (None, "image", "object"):
        raise InvalidInputError("kind is image or object")
    return Labels(labels=workspace(request).get(name).labels(kind))


@router.get("/{name}/images/{image_id}/file", response_class=FileResponse)
def image_file(request: Request, name: str, image_id: str) -> FileResponse:
    return FileResponse(source_file(workspace(request).get(name), image_id))


@router.get("/{name}/images/{record_id}/thumbnail", response_class=FileResponse)
def image_thumbnail(
    request: Request, name: str, record_id: str, size: Annotated[int, Query()] = 256
) -> FileResponse:
    path = thumbnail(workspace(request).get(name), record_id, size)
    return FileResponse(
        path, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"}
    )


@router.post("/{name}/search", response_model=Hits)
def search_collection(request: Request, name: str, body: SearchIn) -> Hits:
    collection = workspace(request).get(name)
    options = SearchOptions(
        k=body.k,
        kind=None if body.kind == "both" else body.kind,
        where=Filter.where(body.where),
        min_score=body.min_score,
        feedback=Feedback(
            tuple(body.more_like), tuple(body.less_like), **body.feedback_weights.model_dump()
        ),
    )
    hits = search(collection, search_terms(body), options)
    return Hits(hits=[hit_out(hit) for hit in hits])
