//! The cloud edge of kerchunk-nos.
