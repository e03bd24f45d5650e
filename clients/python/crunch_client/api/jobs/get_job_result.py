from http import HTTPStatus
from typing import Any
from urllib.parse import quote
from uuid import UUID

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.problem import Problem
from ...models.result_format import ResultFormat
from ...models.result_page import ResultPage
from ...types import UNSET, Response, Unset


def _get_kwargs(
    id: UUID,
    *,
    format_: ResultFormat | Unset = UNSET,
    cursor: str | Unset = UNSET,
    limit: int | Unset = 1000,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    json_format_: str | Unset = UNSET
    if not isinstance(format_, Unset):
        json_format_ = format_.value

    params["format"] = json_format_

    params["cursor"] = cursor

    params["limit"] = limit

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/v1/jobs/{id}/result".format(
            id=quote(str(id), safe=""),
        ),
        "params": params,
    }

    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Problem | ResultPage | None:
    if response.status_code == 200:
        response_200 = ResultPage.from_dict(response.json())

        return response_200

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


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[Problem | ResultPage]:
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
    format_: ResultFormat | Unset = UNSET,
    cursor: str | Unset = UNSET,
    limit: int | Unset = 1000,
) -> Response[Problem | ResultPage]:
    """Fetch a job's result: a page of rows as JSON, or everything as CSV
    or Parquet, streamed.

     Needs the `read` scope.

    Args:
        id (UUID):
        format_ (ResultFormat | Unset): How to serve a result.
        cursor (str | Unset):
        limit (int | Unset):  Default: 1000.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | ResultPage]
    """

    kwargs = _get_kwargs(
        id=id,
        format_=format_,
        cursor=cursor,
        limit=limit,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    id: UUID,
    *,
    client: AuthenticatedClient,
    format_: ResultFormat | Unset = UNSET,
    cursor: str | Unset = UNSET,
    limit: int | Unset = 1000,
) -> Problem | ResultPage | None:
    """Fetch a job's result: a page of rows as JSON, or everything as CSV
    or Parquet, streamed.

     Needs the `read` scope.

    Args:
        id (UUID):
        format_ (ResultFormat | Unset): How to serve a result.
        cursor (str | Unset):
        limit (int | Unset):  Default: 1000.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | ResultPage
    """

    return sync_detailed(
        id=id,
        client=client,
        format_=format_,
        cursor=cursor,
        limit=limit,
    ).parsed


async def asyncio_detailed(
    id: UUID,
    *,
    client: AuthenticatedClient,
    format_: ResultFormat | Unset = UNSET,
    cursor: str | Unset = UNSET,
    limit: int | Unset = 1000,
) -> Response[Problem | ResultPage]:
    """Fetch a job's result: a page of rows as JSON, or everything as CSV
    or Parquet, streamed.

     Needs the `read` scope.

    Args:
        id (UUID):
        format_ (ResultFormat | Unset): How to serve a result.
        cursor (str | Unset):
        limit (int | Unset):  Default: 1000.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | ResultPage]
    """

    kwargs = _get_kwargs(
        id=id,
        format_=format_,
        cursor=cursor,
        limit=limit,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    id: UUID,
    *,
    client: AuthenticatedClient,
    format_: ResultFormat | Unset = UNSET,
    cursor: str | Unset = UNSET,
    limit: int | Unset = 1000,
) -> Problem | ResultPage | None:
    """Fetch a job's result: a page of rows as JSON, or everything as CSV
    or Parquet, streamed.

     Needs the `read` scope.

    Args:
        id (UUID):
        format_ (ResultFormat | Unset): How to serve a result.
        cursor (str | Unset):
        limit (int | Unset):  Default: 1000.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | ResultPage
    """

    return (
        await asyncio_detailed(
            id=id,
            client=client,
            format_=format_,
            cursor=cursor,
            limit=limit,
        )
    ).parsed
