from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.problem import Problem
from ...models.queue_stats import QueueStats
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    fleet: bool | Unset = False,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    params["fleet"] = fleet

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/v1/queue",
        "params": params,
    }

    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Problem | QueueStats | None:
    if response.status_code == 200:
        response_200 = QueueStats.from_dict(response.json())

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
) -> Response[Problem | QueueStats]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    fleet: bool | Unset = False,
) -> Response[Problem | QueueStats]:
    """Live queue statistics: the caller's tenant's jobs, or with
    `fleet=true` the whole service's, which autoscaling runs on.

     Needs the `read` scope; `fleet=true` needs the `admin` scope
    instead. Only the fleet view names workers and shows the scaling
    reading.

    Args:
        fleet (bool | Unset):  Default: False.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | QueueStats]
    """

    kwargs = _get_kwargs(
        fleet=fleet,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient,
    fleet: bool | Unset = False,
) -> Problem | QueueStats | None:
    """Live queue statistics: the caller's tenant's jobs, or with
    `fleet=true` the whole service's, which autoscaling runs on.

     Needs the `read` scope; `fleet=true` needs the `admin` scope
    instead. Only the fleet view names workers and shows the scaling
    reading.

    Args:
        fleet (bool | Unset):  Default: False.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | QueueStats
    """

    return sync_detailed(
        client=client,
        fleet=fleet,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    fleet: bool | Unset = False,
) -> Response[Problem | QueueStats]:
    """Live queue statistics: the caller's tenant's jobs, or with
    `fleet=true` the whole service's, which autoscaling runs on.

     Needs the `read` scope; `fleet=true` needs the `admin` scope
    instead. Only the fleet view names workers and shows the scaling
    reading.

    Args:
        fleet (bool | Unset):  Default: False.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | QueueStats]
    """

    kwargs = _get_kwargs(
        fleet=fleet,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    fleet: bool | Unset = False,
) -> Problem | QueueStats | None:
    """Live queue statistics: the caller's tenant's jobs, or with
    `fleet=true` the whole service's, which autoscaling runs on.

     Needs the `read` scope; `fleet=true` needs the `admin` scope
    instead. Only the fleet view names workers and shows the scaling
    reading.

    Args:
        fleet (bool | Unset):  Default: False.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | QueueStats
    """

    return (
        await asyncio_detailed(
            client=client,
            fleet=fleet,
        )
    ).parsed
