from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.scaling_reading import ScalingReading
    from ..models.worker_load import WorkerLoad


T = TypeVar("T", bound="QueueStats")


@_attrs_define
class QueueStats:
    """Live queue statistics: a tenant's, or the whole service's (the numbers
    autoscaling runs on).

        Attributes:
            backlog (int): runnable + running: the work capacity must be found for.
            cancelled_last_minute (int): Jobs cancelled in the last minute.
            failed_last_minute (int): Jobs that failed in the last minute.
            fleet (bool): Whether these are the whole service's numbers (`fleet=true`) rather
                than the caller's tenant's.
            oldest_queued_ms (int): Age of the oldest claimable job, in milliseconds.
            queued (int): Jobs claimable now.
            runnable (int): Claimable jobs that may start now under the tenants' limits
                (`max_running`): what workers can take.
            running (int): Jobs running.
            succeeded_last_minute (int): Jobs that succeeded in the last minute.
            waiting (int): Jobs waiting for their start time (scheduled or backing off).
            workers (list[WorkerLoad]): Running jobs per worker, in the fleet view; empty in a tenant's.
            scaling (None | ScalingReading | Unset): The worker-scaling metric as last read on this replica, in the
                fleet view; absent in a tenant's, and outside AWS, where the
                publisher is off.
    """

    backlog: int
    cancelled_last_minute: int
    failed_last_minute: int
    fleet: bool
    oldest_queued_ms: int
    queued: int
    runnable: int
    running: int
    succeeded_last_minute: int
    waiting: int
    workers: list[WorkerLoad]
    scaling: None | ScalingReading | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.scaling_reading import ScalingReading  # noqa: PLC0415

        backlog = self.backlog

        cancelled_last_minute = self.cancelled_last_minute

        failed_last_minute = self.failed_last_minute

        fleet = self.fleet

        oldest_queued_ms = self.oldest_queued_ms

        queued = self.queued

        runnable = self.runnable

        running = self.running

        succeeded_last_minute = self.succeeded_last_minute

        waiting = self.waiting

        workers = []
        for workers_item_data in self.workers:
            workers_item = workers_item_data.to_dict()
            workers.append(workers_item)

        scaling: dict[str, Any] | None | Unset
        if isinstance(self.scaling, Unset):
            scaling = UNSET
        elif isinstance(self.scaling, ScalingReading):
            scaling = self.scaling.to_dict()
        else:
            scaling = self.scaling

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "backlog": backlog,
                "cancelled_last_minute": cancelled_last_minute,
                "failed_last_minute": failed_last_minute,
                "fleet": fleet,
                "oldest_queued_ms": oldest_queued_ms,
                "queued": queued,
                "runnable": runnable,
                "running": running,
                "succeeded_last_minute": succeeded_last_minute,
                "waiting": waiting,
                "workers": workers,
            }
        )
        if scaling is not UNSET:
            field_dict["scaling"] = scaling

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.scaling_reading import ScalingReading  # noqa: PLC0415
        from ..models.worker_load import WorkerLoad  # noqa: PLC0415

        d = dict(src_dict)
        backlog = d.pop("backlog")

        cancelled_last_minute = d.pop("cancelled_last_minute")

        failed_last_minute = d.pop("failed_last_minute")

        fleet = d.pop("fleet")

        oldest_queued_ms = d.pop("oldest_queued_ms")

        queued = d.pop("queued")

        runnable = d.pop("runnable")

        running = d.pop("running")

        succeeded_last_minute = d.pop("succeeded_last_minute")

        waiting = d.pop("waiting")

        workers = []
        _workers = d.pop("workers")
        for workers_item_data in _workers:
            workers_item = WorkerLoad.from_dict(workers_item_data)

            workers.append(workers_item)

        def _parse_scaling(data: object) -> None | ScalingReading | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                scaling_type_1 = ScalingReading.from_dict(data)

                return scaling_type_1
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | ScalingReading | Unset, data)

        scaling = _parse_scaling(d.pop("scaling", UNSET))

        queue_stats = cls(
            backlog=backlog,
            cancelled_last_minute=cancelled_last_minute,
            failed_last_minute=failed_last_minute,
            fleet=fleet,
            oldest_queued_ms=oldest_queued_ms,
            queued=queued,
            runnable=runnable,
            running=running,
            succeeded_last_minute=succeeded_last_minute,
            waiting=waiting,
            workers=workers,
            scaling=scaling,
        )

        queue_stats.additional_properties = d
        return queue_stats

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
