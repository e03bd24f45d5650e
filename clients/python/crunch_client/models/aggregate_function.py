from enum import StrEnum


class AggregateFunction(StrEnum):
    COUNT = "count"
    COUNT_DISTINCT = "count_distinct"
    MAX = "max"
    MEAN = "mean"
    MIN = "min"
    STDDEV = "stddev"
    SUM = "sum"

    def __str__(self) -> str:
        return str(self.value)
