"""The items people label: pools, how they are loaded and how one item is shown.

Knows nothing of labels, stores or models.

Partitioned Parquet datasets: `Pool.from_parquet(folder_or_glob, label_column=...,
features="features", image_shape=(28, 28))` reads only the files' footers and the small
columns (ids, labels, texts, image paths); `pool.X` is then a `PartitionedFeatures`, read
row group by row group when rows are asked for, and `pool.parts()` gives one `ParquetPart`
per file for jobs to map over. Bad files raise a `ParquetDatasetError` naming the file and
rows (see `workbench.data.parquet_pool`).
"""

from workbench.data import datasets
from workbench.data.parquet_features import ParquetPart, PartitionedFeatures
from workbench.data.parquet_files import ParquetDatasetError, ParquetPathError
from workbench.data.pool import Pool

__all__ = ["ParquetDatasetError", "ParquetPart", "ParquetPathError", "PartitionedFeatures", "Pool",
           "datasets"]
