from enum import StrEnum


class AnalysisCorrelationAnalysisType(StrEnum):
    CORRELATION = "correlation"

    def __str__(self) -> str:
        return str(self.value)
