from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast
from uuid import UUID

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.job_state import JobState
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.job_input import JobInput
    from ..models.result_summary import ResultSummary


T = TypeVar("T", bound="Job")


@_attrs_define
class Job:
    """A job.

    Attributes:
        attempt (int): The current or last attempt, from 1; 0 before the first start.
        cancel_requested (bool): Whether a cancel was requested while it ran.
        created_at (datetime.datetime): When it was submitted.
        id (UUID): Its id.
        inputs (list[JobInput]): The job's inputs.
        max_attempts (int): Starts allowed.
        priority (int): Its priority.
        queue_wait_ms (int): Milliseconds from submission to the latest start (or to now while queued).
        state (JobState): Where a job is in its life.
        type_ (str): The analysis type (`sql`, `summary`, …).
        error (None | str | Unset): The latest attempt's error.
        finished_at (datetime.datetime | None | Unset): When it finished.
        idempotency_key (None | str | Unset): The idempotency key it was submitted with.
        progress (float | None | Unset): Fraction done, as the worker last reported it.
        progress_message (None | str | Unset): What the worker last said it was doing.
        result (None | ResultSummary | Unset): The result, once succeeded.
        run_time_ms (int | None | Unset): Milliseconds the latest attempt ran (so far, while running).
        started_at (datetime.datetime | None | Unset): When the latest attempt started.
    """

    attempt: int
    cancel_requested: bool
    created_at: datetime.datetime
    id: UUID
    inputs: list[JobInput]
    max_attempts: int
    priority: int
    queue_wait_ms: int
    state: JobState
    type_: str
    error: None | str | Unset = UNSET
    finished_at: datetime.datetime | None | Unset = UNSET
    idempotency_key: None | str | Unset = UNSET
    progress: float | None | Unset = UNSET
    progress_message: None | str | Unset = UNSET
    result: None | ResultSummary | Unset = UNSET
    run_time_ms: int | None | Unset = UNSET
    started_at: datetime.datetime | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.result_summary import ResultSummary  # noqa: PLC0415

        attempt = self.attempt

        cancel_requested = self.cancel_requested

        created_at = self.created_at.isoformat()

        id = str(self.id)

        inputs = []
        for inputs_item_data in self.inputs:
            inputs_item = inputs_item_data.to_dict()
            inputs.append(inputs_item)

        max_attempts = self.max_attempts

        priority = self.priority

        queue_wait_ms = self.queue_wait_ms

        state = self.state.value

        type_ = self.type_

        error: None | str | Unset
        if isinstance(self.error, Unset):
            error = UNSET
        else:
            error = self.error

        finished_at: None | str | Unset
        if isinstance(self.finished_at, Unset):
            finished_at = UNSET
        elif isinstance(self.finished_at, datetime.datetime):
            finished_at = self.finished_at.isoformat()
        else:
            finished_at = self.finished_at

        idempotency_key: None | str | Unset
        if isinstance(self.idempotency_key, Unset):
            idempotency_key = UNSET
        else:
            idempotency_key = self.idempotency_key

        progress: float | None | Unset
        if isinstance(self.progress, Unset):
            progress = UNSET
        else:
            progress = self.progress

        progress_message: None | str | Unset
        if isinstance(self.progress_message, Unset):
            progress_message = UNSET
        else:
            progress_message = self.progress_message

        result: dict[str, Any] | None | Unset
        if isinstance(self.result, Unset):
            result = UNSET
        elif isinstance(self.result, ResultSummary):
            result = self.result.to_dict()
        else:
            result = self.result

        run_time_ms: int | None | Unset
        if isinstance(self.run_time_ms, Unset):
            run_time_ms = UNSET
        else:
            run_time_ms = self.run_time_ms

        started_at: None | str | Unset
        if isinstance(self.started_at, Unset):
            started_at = UNSET
        elif isinstance(self.started_at, datetime.datetime):
            started_at = self.started_at.isoformat()
        else:
            started_at = self.started_at

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "attempt": attempt,
                "cancel_requested": cancel_requested,
                "created_at": created_at,
                "id": id,
                "inputs": inputs,
                "max_attempts": max_attempts,
                "priority": priority,
                "queue_wait_ms": queue_wait_ms,
                "state": state,
                "type": type_,
            }
        )
        if error is not UNSET:
            field_dict["error"] = error
        if finished_at is not UNSET:
            field_dict["finished_at"] = finished_at
        if idempotency_key is not UNSET:
            field_dict["idempotency_key"] = idempotency_key
        if progress is not UNSET:
            field_dict["progress"] = progress
        if progress_message is not UNSET:
            field_dict["progress_message"] = progress_message
        if result is not UNSET:
            field_dict["result"] = result
        if run_time_ms is not UNSET:
            field_dict["run_time_ms"] = run_time_ms
        if started_at is not UNSET:
            field_dict["started_at"] = started_at

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.job_input import JobInput  # noqa: PLC0415
        from ..models.result_summary import ResultSummary  # noqa: PLC0415

        d = dict(src_dict)
        attempt = d.pop("attempt")

        cancel_requested = d.pop("cancel_requested")

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        id = UUID(d.pop("id"))

        inputs = []
        _inputs = d.pop("inputs")
        for inputs_item_data in _inputs:
            inputs_item = JobInput.from_dict(inputs_item_data)

            inputs.append(inputs_item)

        max_attempts = d.pop("max_attempts")

        priority = d.pop("priority")

        queue_wait_ms = d.pop("queue_wait_ms")

        state = JobState(d.pop("state"))

        type_ = d.pop("type")

        def _parse_error(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        error = _parse_error(d.pop("error", UNSET))

        def _parse_finished_at(data: object) -> datetime.datetime | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                finished_at_type_0 = datetime.datetime.fromisoformat(data)

                return finished_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None | Unset, data)

        finished_at = _parse_finished_at(d.pop("finished_at", UNSET))

        def _parse_idempotency_key(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        idempotency_key = _parse_idempotency_key(d.pop("idempotency_key", UNSET))

        def _parse_progress(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        progress = _parse_progress(d.pop("progress", UNSET))

        def _parse_progress_message(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        progress_message = _parse_progress_message(d.pop("progress_message", UNSET))

        def _parse_result(data: object) -> None | ResultSummary | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                result_type_1 = ResultSummary.from_dict(data)

                return result_type_1
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | ResultSummary | Unset, data)

        result = _parse_result(d.pop("result", UNSET))

        def _parse_run_time_ms(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        run_time_ms = _parse_run_time_ms(d.pop("run_time_ms", UNSET))

        def _parse_started_at(data: object) -> datetime.datetime | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                started_at_type_0 = datetime.datetime.fromisoformat(data)

                return started_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None | Unset, data)

        started_at = _parse_started_at(d.pop("started_at", UNSET))

        job = cls(
            attempt=attempt,
            cancel_requested=cancel_requested,
            created_at=created_at,
            id=id,
            inputs=inputs,
            max_attempts=max_attempts,
            priority=priority,
            queue_wait_ms=queue_wait_ms,
            state=state,
            type_=type_,
            error=error,
            finished_at=finished_at,
            idempotency_key=idempotency_key,
            progress=progress,
            progress_message=progress_message,
            result=result,
            run_time_ms=run_time_ms,
            started_at=started_at,
        )

        job.additional_properties = d
        return job

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
