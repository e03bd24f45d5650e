from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.analysis_sql_analysis_type import AnalysisSqlAnalysisType

T = TypeVar("T", bound="AnalysisSqlAnalysis")


@_attrs_define
class AnalysisSqlAnalysis:
    """What a job computes; `type` says which analysis.

    Attributes:
        query (str): One SELECT (or WITH … SELECT) statement.
        type_ (AnalysisSqlAnalysisType):  Example: sql.
    """

    query: str
    type_: AnalysisSqlAnalysisType
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        query = self.query

        type_ = self.type_.value

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "query": query,
                "type": type_,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        query = d.pop("query")

        type_ = AnalysisSqlAnalysisType(d.pop("type"))

        analysis_sql_analysis = cls(
            query=query,
            type_=type_,
        )

        analysis_sql_analysis.additional_properties = d
        return analysis_sql_analysis

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
