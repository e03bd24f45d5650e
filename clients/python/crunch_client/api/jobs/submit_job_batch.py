from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.job_batch import JobBatch
from ...models.new_job_batch import NewJobBatch
from ...models.problem import Problem
from ...types import Response


def _get_kwargs(
    *,
    body: NewJobBatch,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/v1/job-batches",
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json; charset=utf-8"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> JobBatch | Problem | None:
    if response.status_code == 201:
        response_201 = JobBatch.from_dict(response.json())

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

    if response.status_code == 413:
        response_413 = Problem.from_dict(response.json())

        return response_413

    if response.status_code == 415:
        response_415 = Problem.from_dict(response.json())

        return response_415

    if response.status_code == 422:
        response_422 = Problem.from_dict(response.json())

        return response_422

    if response.status_code == 429:
        response_429 = Problem.from_dict(response.json())

        return response_429

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


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[JobBatch | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    body: NewJobBatch,
) -> Response[JobBatch | Problem]:
    """Submit several jobs in one transaction: all are created or none.

     A batch that would take the tenant past the queued jobs it may have
    is refused whole, 429 with `Retry-After`. Needs the `write` scope.

    Args:
        body (NewJobBatch): Several jobs submitted in one transaction: all or none are created.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[JobBatch | Problem]
    """

    kwargs = _get_kwargs(
        body=body,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient,
    body: NewJobBatch,
) -> JobBatch | Problem | None:
    """Submit several jobs in one transaction: all are created or none.

     A batch that would take the tenant past the queued jobs it may have
    is refused whole, 429 with `Retry-After`. Needs the `write` scope.

    Args:
        body (NewJobBatch): Several jobs submitted in one transaction: all or none are created.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        JobBatch | Problem
    """

    return sync_detailed(
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    body: NewJobBatch,
) -> Response[JobBatch | Problem]:
    """Submit several jobs in one transaction: all are created or none.

     A batch that would take the tenant past the queued jobs it may have
    is refused whole, 429 with `Retry-After`. Needs the `write` scope.

    Args:
        body (NewJobBatch): Several jobs submitted in one transaction: all or none are created.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[JobBatch | Problem]
    """

    kwargs = _get_kwargs(
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    body: NewJobBatch,
) -> JobBatch | Problem | None:
    """Submit several jobs in one transaction: all are created or none.

     A batch that would take the tenant past the queued jobs it may have
    is refused whole, 429 with `Retry-After`. Needs the `write` scope.

    Args:
        body (NewJobBatch): Several jobs submitted in one transaction: all or none are created.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        JobBatch | Problem
    """

    return (
        await asyncio_detailed(
            client=client,
            body=body,
        )
    ).parsed
