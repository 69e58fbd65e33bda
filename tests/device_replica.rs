//! A model whose weights live on the device reruns on a CPU copy of them
//! (`device::Replica`). This machine's libtorch may have no GPU, so the
//! device attempt's failure is injected (`chaos::inject_device_error`); the
//! same drill runs on a real GPU in `device_cuda`. Built with
//! `--features tch` only.
#![cfg(feature = "tch")]

mod common;

use common::replica;
use tch::Device;

#[test]
fn reruns_of_a_frozen_model_run_on_one_cpu_copy() {
    replica::reruns_of_a_frozen_model_run_on_one_cpu_copy(Device::Cpu);
}

#[test]
fn reruns_of_a_model_in_training_see_each_step() {
    replica::reruns_of_a_model_in_training_see_each_step(Device::Cpu);
}

#[test]
fn a_double_precision_model_is_copied_as_it_is() {
    replica::a_double_precision_model_is_copied_as_it_is(Device::Cpu);
}
