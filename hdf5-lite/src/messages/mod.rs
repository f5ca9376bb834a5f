//! Object header message bodies (spec IV.A.2), one module per message.

pub mod attribute;
pub mod dataspace;
pub mod datatype;
pub mod external_files;
pub mod file_space;
pub mod fill_value;
pub mod filter_pipeline;
pub mod layout;
pub mod link;
pub mod shared;

use crate::model::Datatype;

/// A message that is either stored inline or shared elsewhere.
#[derive(Debug, Clone, PartialEq)]
pub enum MaybeShared {
    Inline(Datatype),
    Shared(shared::SharedRef),
}
