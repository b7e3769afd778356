"""High-level entry points for notebooks and scripts."""
from .batchnorm_adaptation import adapt_batchnorm
from .dataset_inference import (build_test_dataset, evaluate_dataset,
                                inference_dataset)
from .inference import (VolumePrediction, build_volume_pipeline, case_name,
                        find_volumes, inference_volume, init_model,
                        output_paths, probs_path, save_prediction)
from .pseudo_label_dataset import write_agreement_dataset

__all__ = [
    'VolumePrediction', 'init_model', 'inference_volume', 'save_prediction',
    'build_volume_pipeline', 'find_volumes', 'case_name', 'output_paths',
    'probs_path', 'build_test_dataset', 'inference_dataset',
    'evaluate_dataset',
    'write_agreement_dataset', 'adapt_batchnorm'
]
