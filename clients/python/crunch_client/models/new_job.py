from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.analysis_correlation_analysis import AnalysisCorrelationAnalysis
    from ..models.analysis_group_by_analysis import AnalysisGroupByAnalysis
    from ..models.analysis_histogram_analysis import AnalysisHistogramAnalysis
    from ..models.analysis_sql_analysis import AnalysisSqlAnalysis
    from ..models.analysis_summary_analysis import AnalysisSummaryAnalysis
    from ..models.analysis_time_series_analysis import AnalysisTimeSeriesAnalysis
    from ..models.job_input import JobInput


T = TypeVar("T", bound="NewJob")


@_attrs_define
class NewJob:
    """A job to run.

    Attributes:
        analysis (AnalysisCorrelationAnalysis | AnalysisGroupByAnalysis | AnalysisHistogramAnalysis |
            AnalysisSqlAnalysis | AnalysisSummaryAnalysis | AnalysisTimeSeriesAnalysis): What a job computes; `type` says
            which analysis.
        inputs (list[JobInput]): The datasets the analysis reads, by table name.
        idempotency_key (None | str | Unset): Makes the submit idempotent: while a job with this key is queued,
            running or succeeded, submitting again returns that job.
        max_attempts (int | None | Unset): Starts allowed, 1 to 100 (default 3).
        priority (int | Unset): Higher runs first; -100 to 100. Default: 0.
        timeout_seconds (int | None | Unset): Time limit per attempt in seconds, 1 to 86400 (default 1800).
    """

    analysis: (
        AnalysisCorrelationAnalysis
        | AnalysisGroupByAnalysis
        | AnalysisHistogramAnalysis
        | AnalysisSqlAnalysis
        | AnalysisSummaryAnalysis
        | AnalysisTimeSeriesAnalysis
    )
    inputs: list[JobInput]
    idempotency_key: None | str | Unset = UNSET
    max_attempts: int | None | Unset = UNSET
    priority: int | Unset = UNSET
    timeout_seconds: int | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.analysis_correlation_analysis import AnalysisCorrelationAnalysis  # noqa: PLC0415
        from ..models.analysis_group_by_analysis import AnalysisGroupByAnalysis  # noqa: PLC0415
        from ..models.analysis_histogram_analysis import AnalysisHistogramAnalysis  # noqa: PLC0415
        from ..models.analysis_sql_analysis import AnalysisSqlAnalysis  # noqa: PLC0415
        from ..models.analysis_summary_analysis import AnalysisSummaryAnalysis  # noqa: PLC0415

        analysis: dict[str, Any]
        if isinstance(self.analysis, AnalysisSqlAnalysis):
            analysis = self.analysis.to_dict()
        elif isinstance(self.analysis, AnalysisSummaryAnalysis):
            analysis = self.analysis.to_dict()
        elif isinstance(self.analysis, AnalysisGroupByAnalysis):
            analysis = self.analysis.to_dict()
        elif isinstance(self.analysis, AnalysisHistogramAnalysis):
            analysis = self.analysis.to_dict()
        elif isinstance(self.analysis, AnalysisCorrelationAnalysis):
            analysis = self.analysis.to_dict()
        else:
            analysis = self.analysis.to_dict()

        inputs = []
        for inputs_item_data in self.inputs:
            inputs_item = inputs_item_data.to_dict()
            inputs.append(inputs_item)

        idempotency_key: None | str | Unset
        if isinstance(self.idempotency_key, Unset):
            idempotency_key = UNSET
        else:
            idempotency_key = self.idempotency_key

        max_attempts: int | None | Unset
        if isinstance(self.max_attempts, Unset):
            max_attempts = UNSET
        else:
            max_attempts = self.max_attempts

        priority = self.priority

        timeout_seconds: int | None | Unset
        if isinstance(self.timeout_seconds, Unset):
            timeout_seconds = UNSET
        else:
            timeout_seconds = self.timeout_seconds

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "analysis": analysis,
                "inputs": inputs,
            }
        )
        if idempotency_key is not UNSET:
            field_dict["idempotency_key"] = idempotency_key
        if max_attempts is not UNSET:
            field_dict["max_attempts"] = max_attempts
        if priority is not UNSET:
            field_dict["priority"] = priority
        if timeout_seconds is not UNSET:
            field_dict["timeout_seconds"] = timeout_seconds

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.analysis_correlation_analysis import AnalysisCorrelationAnalysis  # noqa: PLC0415
        from ..models.analysis_group_by_analysis import AnalysisGroupByAnalysis  # noqa: PLC0415
        from ..models.analysis_histogram_analysis import AnalysisHistogramAnalysis  # noqa: PLC0415
        from ..models.analysis_sql_analysis import AnalysisSqlAnalysis  # noqa: PLC0415
        from ..models.analysis_summary_analysis import AnalysisSummaryAnalysis  # noqa: PLC0415
        from ..models.analysis_time_series_analysis import AnalysisTimeSeriesAnalysis  # noqa: PLC0415
        from ..models.job_input import JobInput  # noqa: PLC0415

        d = dict(src_dict)

        def _parse_analysis(
            data: object,
        ) -> (
            AnalysisCorrelationAnalysis
            | AnalysisGroupByAnalysis
            | AnalysisHistogramAnalysis
            | AnalysisSqlAnalysis
            | AnalysisSummaryAnalysis
            | AnalysisTimeSeriesAnalysis
        ):
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                componentsschemas_analysis_type_0 = AnalysisSqlAnalysis.from_dict(data)

                return componentsschemas_analysis_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                componentsschemas_analysis_type_1 = AnalysisSummaryAnalysis.from_dict(data)

                return componentsschemas_analysis_type_1
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                componentsschemas_analysis_type_2 = AnalysisGroupByAnalysis.from_dict(data)

                return componentsschemas_analysis_type_2
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                componentsschemas_analysis_type_3 = AnalysisHistogramAnalysis.from_dict(data)

                return componentsschemas_analysis_type_3
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                componentsschemas_analysis_type_4 = AnalysisCorrelationAnalysis.from_dict(data)

                return componentsschemas_analysis_type_4
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            if not isinstance(data, dict):
                raise TypeError()
            componentsschemas_analysis_type_5 = AnalysisTimeSeriesAnalysis.from_dict(data)

            return componentsschemas_analysis_type_5

        analysis = _parse_analysis(d.pop("analysis"))

        inputs = []
        _inputs = d.pop("inputs")
        for inputs_item_data in _inputs:
            inputs_item = JobInput.from_dict(inputs_item_data)

            inputs.append(inputs_item)

        def _parse_idempotency_key(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        idempotency_key = _parse_idempotency_key(d.pop("idempotency_key", UNSET))

        def _parse_max_attempts(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        max_attempts = _parse_max_attempts(d.pop("max_attempts", UNSET))

        priority = d.pop("priority", UNSET)

        def _parse_timeout_seconds(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        timeout_seconds = _parse_timeout_seconds(d.pop("timeout_seconds", UNSET))

        new_job = cls(
            analysis=analysis,
            inputs=inputs,
            idempotency_key=idempotency_key,
            max_attempts=max_attempts,
            priority=priority,
            timeout_seconds=timeout_seconds,
        )

        new_job.additional_properties = d
        return new_job

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
