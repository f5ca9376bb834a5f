//! Reference sets from hdf5-lite models.
