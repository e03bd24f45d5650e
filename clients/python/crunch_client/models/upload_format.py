from enum import StrEnum


class UploadFormat(StrEnum):
    CSV = "csv"
    NDJSON = "ndjson"
    PARQUET = "parquet"

    def __str__(self) -> str:
        return str(self.value)
