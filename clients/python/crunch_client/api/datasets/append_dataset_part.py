from http import HTTPStatus
from typing import Any
from urllib.parse import quote
from uuid import UUID

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.part import Part
from ...models.problem import Problem
from ...models.upload_format import UploadFormat
from ...types import UNSET, File, Response, Unset


def _get_kwargs(
    id: UUID,
    *,
    body: File,
    format_: UploadFormat | Unset = UNSET,
    delimiter: str | Unset = UNSET,
    header: bool | Unset = True,
    null: list[str] | Unset = UNSET,
    schema: str | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    params: dict[str, Any] = {}

    json_format_: str | Unset = UNSET
    if not isinstance(format_, Unset):
        json_format_ = format_.value

    params["format"] = json_format_

    params["delimiter"] = delimiter

    params["header"] = header

    json_null: list[str] | Unset = UNSET
    if not isinstance(null, Unset):
        json_null = null

    params["null"] = json_null

    params["schema"] = schema

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/v1/datasets/{id}/parts".format(
            id=quote(str(id), safe=""),
        ),
        "params": params,
    }

    _kwargs["content"] = body.payload
    headers["Content-Type"] = "application/octet-stream"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Part | Problem | None:
    if response.status_code == 201:
        response_201 = Part.from_dict(response.json())

        return response_201

    if response.status_code == 400:
        response_400 = Problem.from_dict(response.json())

        return response_400

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())

        return response_401

    if response.status_code == 403:
        response_403 = Problem.from_dict(response.json())

        return response_403

    if response.status_code == 404:
        response_404 = Problem.from_dict(response.json())

        return response_404

    if response.status_code == 409:
        response_409 = Problem.from_dict(response.json())

        return response_409

    if response.status_code == 413:
        response_413 = Problem.from_dict(response.json())

        return response_413

    if response.status_code == 415:
        response_415 = Problem.from_dict(response.json())

        return response_415

    if response.status_code == 422:
        response_422 = Problem.from_dict(response.json())

        return response_422

    if response.status_code == 500:
        response_500 = Problem.from_dict(response.json())

        return response_500

    if response.status_code == 503:
        response_503 = Problem.from_dict(response.json())

        return response_503

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[Part | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    id: UUID,
    *,
    client: AuthenticatedClient,
    body: File,
    format_: UploadFormat | Unset = UNSET,
    delimiter: str | Unset = UNSET,
    header: bool | Unset = True,
    null: list[str] | Unset = UNSET,
    schema: str | Unset = UNSET,
) -> Response[Part | Problem]:
    """Append a batch of rows as one atomic part: all rows or none.

     Needs the `write` scope.

    Args:
        id (UUID):
        format_ (UploadFormat | Unset): How an upload's body is encoded.
        delimiter (str | Unset):
        header (bool | Unset):  Default: True.
        null (list[str] | Unset):
        schema (str | Unset):
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Part | Problem]
    """

    kwargs = _get_kwargs(
        id=id,
        body=body,
        format_=format_,
        delimiter=delimiter,
        header=header,
        null=null,
        schema=schema,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    id: UUID,
    *,
    client: AuthenticatedClient,
    body: File,
    format_: UploadFormat | Unset = UNSET,
    delimiter: str | Unset = UNSET,
    header: bool | Unset = True,
    null: list[str] | Unset = UNSET,
    schema: str | Unset = UNSET,
) -> Part | Problem | None:
    """Append a batch of rows as one atomic part: all rows or none.

     Needs the `write` scope.

    Args:
        id (UUID):
        format_ (UploadFormat | Unset): How an upload's body is encoded.
        delimiter (str | Unset):
        header (bool | Unset):  Default: True.
        null (list[str] | Unset):
        schema (str | Unset):
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Part | Problem
    """

    return sync_detailed(
        id=id,
        client=client,
        body=body,
        format_=format_,
        delimiter=delimiter,
        header=header,
        null=null,
        schema=schema,
    ).parsed


async def asyncio_detailed(
    id: UUID,
    *,
    client: AuthenticatedClient,
    body: File,
    format_: UploadFormat | Unset = UNSET,
    delimiter: str | Unset = UNSET,
    header: bool | Unset = True,
    null: list[str] | Unset = UNSET,
    schema: str | Unset = UNSET,
) -> Response[Part | Problem]:
    """Append a batch of rows as one atomic part: all rows or none.

     Needs the `write` scope.

    Args:
        id (UUID):
        format_ (UploadFormat | Unset): How an upload's body is encoded.
        delimiter (str | Unset):
        header (bool | Unset):  Default: True.
        null (list[str] | Unset):
        schema (str | Unset):
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Part | Problem]
    """

    kwargs = _get_kwargs(
        id=id,
        body=body,
        format_=format_,
        delimiter=delimiter,
        header=header,
        null=null,
        schema=schema,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    id: UUID,
    *,
    client: AuthenticatedClient,
    body: File,
    format_: UploadFormat | Unset = UNSET,
    delimiter: str | Unset = UNSET,
    header: bool | Unset = True,
    null: list[str] | Unset = UNSET,
    schema: str | Unset = UNSET,
) -> Part | Problem | None:
    """Append a batch of rows as one atomic part: all rows or none.

     Needs the `write` scope.

    Args:
        id (UUID):
        format_ (UploadFormat | Unset): How an upload's body is encoded.
        delimiter (str | Unset):
        header (bool | Unset):  Default: True.
        null (list[str] | Unset):
        schema (str | Unset):
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Part | Problem
    """

    return (
        await asyncio_detailed(
            id=id,
            client=client,
            body=body,
            format_=format_,
            delimiter=delimiter,
            header=header,
            null=null,
            schema=schema,
        )
    ).parsed
