from enum import StrEnum


class FilterOp(StrEnum):
    EQ = "eq"
    GE = "ge"
    GT = "gt"
    IN = "in"
    IS_NOT_NULL = "is_not_null"
    IS_NULL = "is_null"
    LE = "le"
    LT = "lt"
    NE = "ne"

    def __str__(self) -> str:
        return str(self.value)
