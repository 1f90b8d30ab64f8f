pub mod build_info;
