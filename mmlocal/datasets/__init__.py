from .class_folder import ClassFolderDataset

__all__ = ['ClassFolderDataset']
