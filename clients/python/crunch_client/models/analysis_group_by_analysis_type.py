from enum import StrEnum


class AnalysisGroupByAnalysisType(StrEnum):
    GROUP_BY = "group_by"

    def __str__(self) -> str:
        return str(self.value)
