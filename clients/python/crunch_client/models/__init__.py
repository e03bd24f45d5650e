"""Contains all the data models used in inputs/outputs"""

from .aggregate import Aggregate
from .aggregate_function import AggregateFunction
from .analysis_correlation_analysis import AnalysisCorrelationAnalysis
from .analysis_correlation_analysis_type import AnalysisCorrelationAnalysisType
from .analysis_group_by_analysis import AnalysisGroupByAnalysis
from .analysis_group_by_analysis_type import AnalysisGroupByAnalysisType
from .analysis_histogram_analysis import AnalysisHistogramAnalysis
from .analysis_histogram_analysis_type import AnalysisHistogramAnalysisType
from .analysis_sql_analysis import AnalysisSqlAnalysis
from .analysis_sql_analysis_type import AnalysisSqlAnalysisType
from .analysis_summary_analysis import AnalysisSummaryAnalysis
from .analysis_summary_analysis_type import AnalysisSummaryAnalysisType
from .analysis_time_series_analysis import AnalysisTimeSeriesAnalysis
from .analysis_time_series_analysis_type import AnalysisTimeSeriesAnalysisType
from .api_key import ApiKey
from .api_key_list import ApiKeyList
from .column import Column
from .correlation_analysis import CorrelationAnalysis
from .created_api_key import CreatedApiKey
from .dataset import Dataset
from .dataset_created import DatasetCreated
from .dataset_detail import DatasetDetail
from .dataset_page import DatasetPage
from .filter_ import Filter
from .filter_op import FilterOp
from .group_by_analysis import GroupByAnalysis
from .histogram_analysis import HistogramAnalysis
from .input_error import InputError
from .job import Job
from .job_batch import JobBatch
from .job_input import JobInput
from .job_page import JobPage
from .job_state import JobState
from .key_scope import KeyScope
from .new_api_key import NewApiKey
from .new_job import NewJob
from .new_job_batch import NewJobBatch
from .part import Part
from .problem import Problem
from .queue_stats import QueueStats
from .readiness import Readiness
from .result_format import ResultFormat
from .result_page import ResultPage
from .result_page_rows_item import ResultPageRowsItem
from .result_summary import ResultSummary
from .scaling_reading import ScalingReading
from .sql_analysis import SqlAnalysis
from .summary_analysis import SummaryAnalysis
from .time_series_analysis import TimeSeriesAnalysis
from .upload_format import UploadFormat
from .worker_load import WorkerLoad

__all__ = (
    "Aggregate",
    "AggregateFunction",
    "AnalysisCorrelationAnalysis",
    "AnalysisCorrelationAnalysisType",
    "AnalysisGroupByAnalysis",
    "AnalysisGroupByAnalysisType",
    "AnalysisHistogramAnalysis",
    "AnalysisHistogramAnalysisType",
    "AnalysisSqlAnalysis",
    "AnalysisSqlAnalysisType",
    "AnalysisSummaryAnalysis",
    "AnalysisSummaryAnalysisType",
    "AnalysisTimeSeriesAnalysis",
    "AnalysisTimeSeriesAnalysisType",
    "ApiKey",
    "ApiKeyList",
    "Column",
    "CorrelationAnalysis",
    "CreatedApiKey",
    "Dataset",
    "DatasetCreated",
    "DatasetDetail",
    "DatasetPage",
    "Filter",
    "FilterOp",
    "GroupByAnalysis",
    "HistogramAnalysis",
    "InputError",
    "Job",
    "JobBatch",
    "JobInput",
    "JobPage",
    "JobState",
    "KeyScope",
    "NewApiKey",
    "NewJob",
    "NewJobBatch",
    "Part",
    "Problem",
    "QueueStats",
    "Readiness",
    "ResultFormat",
    "ResultPage",
    "ResultPageRowsItem",
    "ResultSummary",
    "ScalingReading",
    "SqlAnalysis",
    "SummaryAnalysis",
    "TimeSeriesAnalysis",
    "UploadFormat",
    "WorkerLoad",
)
