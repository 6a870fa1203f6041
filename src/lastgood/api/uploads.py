"""Artifact uploads: the multipart files written to a private folder, names checked first.

A file's name is its path inside the version (`model.skops`, or `data/weights.bin` for a
folder). Absolute paths, `..`, backslashes, empty or control-character names are refused, so
nothing is ever written outside the upload's own temporary folder.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path, PurePosixPath
from typing import Any

from fastapi import UploadFile
from pydantic import ValidationError

from lastgood.api.schemas import RegisterMeta
from lastgood.domain.errors import InvalidInput
from lastgood.services.documents import parse_golden, parse_requirements, parse_schema
from lastgood.services.registry import RegisterRequest

MAX_FILES = 1000
CHUNK = 1024 * 1024
UPLOAD_FILES = "artifact file(s), none empty; each file name is its path in the version"
UPLOAD_BODY = "Body_register_api_v1_models__name__versions_post"


def document_upload(openapi: dict[str, Any]) -> None:
    """Say in the OpenAPI document what an upload's parts hold: `meta` is a JSON part of
    RegisterMeta (FastAPI only knows it as the text it reads) and no file is empty."""
    schemas = openapi.get("components", {}).get("schemas", {})
    body = schemas.get(UPLOAD_BODY)
    if body is None:
        return
    meta = RegisterMeta.model_json_schema(by_alias=True,
                                          ref_template="#/components/schemas/{model}")
    schemas.update(meta.pop("$defs", {}))
    schemas["RegisterMeta"] = meta
    body["properties"]["meta"] = {"$ref": "#/components/schemas/RegisterMeta"}
    body["properties"]["file"]["items"]["minLength"] = 1
    path = openapi["paths"]["/api/v1/models/{name}/versions"]["post"]
    path["requestBody"]["content"]["multipart/form-data"]["encoding"] = {
        "meta": {"contentType": "application/json"}}


def safe_relative(name: str | None) -> PurePosixPath:
    """The artifact path `name` if it stays inside its folder, else InvalidInput."""
    text = name or ""
    parts = PurePosixPath(text).parts
    bad = (not text or len(text) > 1024 or "\\" in text or text.startswith("/")
           or any(ord(ch) < 32 or ch == "\x7f" for ch in text)
           or any(p in ("", ".", "..") or len(p) > 255 for p in parts)
           or text != "/".join(parts))
    if bad:
        raise InvalidInput(f"artifact name {text!r} is not a safe relative path",
                           fix="name each file by its path inside the model, without '..', "
                               "a leading '/' or backslashes (e.g. model.skops, data/w.bin)")
    return PurePosixPath(text)


def parse_meta(text: str) -> RegisterMeta:
    """The `meta` form field: JSON of RegisterMeta."""
    try:
        data: Any = json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"meta is not valid JSON: {exc.msg} at line {exc.lineno}",
                           fix='send meta as a JSON object, e.g. {"tag": "v1.4.2"}') from exc
    try:
        return RegisterMeta.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "meta"
        raise InvalidInput(f"meta.{where}: {first.get('msg', 'invalid')}",
                           fix="see RegisterMeta in /openapi.json") from exc


def spool(files: list[UploadFile], folder: Path, *, directory: bool) -> Path:
    """Write the uploads below `folder`; return what to register (the file or the folder)."""
    if not files:
        raise InvalidInput("no artifact file was sent", fix="send one or more `file` parts")
    if len(files) > MAX_FILES:
        raise InvalidInput(f"{len(files)} files is over the limit of {MAX_FILES}",
                           fix="pack the model into fewer files")
    names = [safe_relative(f.filename) for f in files]
    if len(set(names)) != len(names):
        raise InvalidInput("two uploaded files have the same name",
                           fix="give every file its own path")
    if not directory and len(files) == 1 and len(names[0].parts) == 1:
        target = folder / names[0].name
        _write(files[0], target)
        return target
    root = folder / "artifact"
    for upload, name in zip(files, names, strict=True):
        _write(upload, root.joinpath(*name.parts))
    return root


def _write(upload: UploadFile, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    upload.file.seek(0)
    with dest.open("xb") as out:
        shutil.copyfileobj(upload.file, out, CHUNK)


def register_request(model: str, path: Path, meta: RegisterMeta) -> RegisterRequest:
    """The service's request from an upload and its metadata."""
    return RegisterRequest(
        model=model, path=path, flavor=meta.flavor, tag=meta.tag, metrics=dict(meta.metrics),
        requires=parse_requirements(meta.requires), python=meta.python,
        schema=parse_schema(meta.schema_, source="meta.schema")
        if meta.schema_ is not None else None,
        golden=parse_golden(meta.golden, source="meta.golden") if meta.golden is not None
        else (),
        provenance=dict(meta.provenance), labels=tuple(meta.labels),
        allow_pickle=meta.allow_pickle, signature=meta.signature, signed_by=meta.signed_by)
