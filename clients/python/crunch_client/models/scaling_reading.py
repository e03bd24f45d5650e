from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="ScalingReading")


@_attrs_define
class ScalingReading:
    """The numbers behind the worker-scaling metric.

    Attributes:
        backlog_per_task (float): The published value: backlog / max(running tasks, 1), at least twice
            the target when no task runs and work waits.
        desired_tasks (int): The worker service's desired task count, per ECS.
        max_tasks (int): The most worker tasks the service scales to.
        min_tasks (int): The fewest worker tasks the service scales to.
        published (bool): Whether this replica published the reading (one replica does).
        read_at (datetime.datetime): When they were read.
        running_tasks (int): Running worker tasks, per ECS.
        target (float): The scaling policy's target (jobs per task).
    """

    backlog_per_task: float
    desired_tasks: int
    max_tasks: int
    min_tasks: int
    published: bool
    read_at: datetime.datetime
    running_tasks: int
    target: float
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        backlog_per_task = self.backlog_per_task

        desired_tasks = self.desired_tasks

        max_tasks = self.max_tasks

        min_tasks = self.min_tasks

        published = self.published

        read_at = self.read_at.isoformat()

        running_tasks = self.running_tasks

        target = self.target

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "backlog_per_task": backlog_per_task,
                "desired_tasks": desired_tasks,
                "max_tasks": max_tasks,
                "min_tasks": min_tasks,
                "published": published,
                "read_at": read_at,
                "running_tasks": running_tasks,
                "target": target,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        backlog_per_task = d.pop("backlog_per_task")

        desired_tasks = d.pop("desired_tasks")

        max_tasks = d.pop("max_tasks")

        min_tasks = d.pop("min_tasks")

        published = d.pop("published")

        read_at = datetime.datetime.fromisoformat(d.pop("read_at"))

        running_tasks = d.pop("running_tasks")

        target = d.pop("target")

        scaling_reading = cls(
            backlog_per_task=backlog_per_task,
            desired_tasks=desired_tasks,
            max_tasks=max_tasks,
            min_tasks=min_tasks,
            published=published,
            read_at=read_at,
            running_tasks=running_tasks,
            target=target,
        )

        scaling_reading.additional_properties = d
        return scaling_reading

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
