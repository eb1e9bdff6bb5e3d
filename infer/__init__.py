"""The runtime: load a trained model folder and predict frames. Never imports ``train``."""
from .classifier import ArticleAnalysis, FrameProfile, FramingClassifier, SentenceResult
from .errors import FramingInputError, ModelFolderError
from .model_folder import FramingMeta, read_meta, write_meta

__all__ = [
    "ArticleAnalysis", "FrameProfile", "FramingClassifier", "SentenceResult",
    "FramingInputError", "ModelFolderError", "FramingMeta", "read_meta", "write_meta",
]
