from enum import StrEnum


class AnalysisHistogramAnalysisType(StrEnum):
    HISTOGRAM = "histogram"

    def __str__(self) -> str:
        return str(self.value)
