"""The items people label: pools, how they are loaded and how one item is shown.

Knows nothing of labels, stores or models.

Partitioned Parquet datasets: `Pool.from_parquet(folder_or_glob, label_column=...,
features="features", image_shape=(28, 28))` reads only the files' footers and the small
columns (ids, labels, texts, image paths); `pool.X` is then a `PartitionedFeatures`, read
row group by row group when rows are asked for, and `pool.parts()` gives one `ParquetPart`
per file for jobs to map over. Bad files raise a `ParquetDatasetError` naming the file and
rows (see `workbench.data.parquet_pool`).

Pretrained encoders (`workbench.data.pretrained`): `Session(pool, store,
representation="timm:resnet18" | "model2vec:NAME" | a torch module | a function)`, loaded from
the library's local cache only; `pretrained(module, size=..., mean=..., std=...)` says how
images are prepared for a bare module.
"""

from workbench.data import datasets
from workbench.data.parquet_features import ParquetPart, PartitionedFeatures
from workbench.data.parquet_files import ParquetDatasetError, ParquetPathError
from workbench.data.pool import Pool
from workbench.data.pretrained import EncoderUnavailable, PretrainedEncoder, pretrained

__all__ = ["EncoderUnavailable", "ParquetDatasetError", "ParquetPart", "ParquetPathError",
           "PartitionedFeatures", "Pool", "PretrainedEncoder", "datasets", "pretrained"]
