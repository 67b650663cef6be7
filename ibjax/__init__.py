"""ibjax: information-plane experiments for hundreds of seeds in one compiled JAX program.

Shwartz-Ziv & Tishby (2017), "Opening the Black Box of Deep Neural Networks via Information",
https://arxiv.org/abs/1703.00810.
"""

from ibjax.binning import bin_indices as bin_indices
from ibjax.binning import binned_mi as binned_mi
from ibjax.config import Config as Config
from ibjax.config import ConfigError as ConfigError
from ibjax.config import snapshot_epochs as snapshot_epochs
from ibjax.data import Dataset as Dataset
from ibjax.data import load_file as load_file
from ibjax.data import load_var_u as load_var_u
from ibjax.data import make_dataset as make_dataset
from ibjax.estimators import ESTIMATORS as ESTIMATORS
from ibjax.estimators import mutual_information as mutual_information
from ibjax.results import config_of as config_of
from ibjax.results import load as load
from ibjax.results import save as save
from ibjax.runner import run as run
from ibjax.train import make_trainer as make_trainer

__version__ = "0.1.0"

__all__ = [
    "ESTIMATORS", "Config", "ConfigError", "Dataset", "bin_indices", "binned_mi", "config_of",
    "load", "load_file", "load_var_u", "make_dataset", "make_trainer", "mutual_information",
    "run", "save", "snapshot_epochs",
]
