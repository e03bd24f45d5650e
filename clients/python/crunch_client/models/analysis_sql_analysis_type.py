from enum import StrEnum


class AnalysisSqlAnalysisType(StrEnum):
    SQL = "sql"

    def __str__(self) -> str:
        return str(self.value)
