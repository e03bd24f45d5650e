from enum import StrEnum


class AnalysisSummaryAnalysisType(StrEnum):
    SUMMARY = "summary"

    def __str__(self) -> str:
        return str(self.value)
