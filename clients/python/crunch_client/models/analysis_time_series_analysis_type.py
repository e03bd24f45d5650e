from enum import StrEnum


class AnalysisTimeSeriesAnalysisType(StrEnum):
    TIME_SERIES = "time_series"

    def __str__(self) -> str:
        return str(self.value)
