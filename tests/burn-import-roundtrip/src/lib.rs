//! The code burn-import generated from `models/circadian-exposure/model.onnx`.

#[allow(clippy::all, unused, non_snake_case)]
pub mod model {
    include!(concat!(env!("OUT_DIR"), "/model/model.rs"));
}
