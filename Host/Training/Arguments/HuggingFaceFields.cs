namespace PeftHost.Training.Arguments;

/// <summary>
/// Fields of transformers' <c>TrainingArguments</c> (4.44) and TRL's <c>SFTConfig</c> that PeftHost
/// knows but does not support: a config naming one is refused with that reason, rather than as unknown.
/// </summary>
internal static class HuggingFaceFields
{
    public static readonly IReadOnlySet<string> Unsupported = new HashSet<string>(StringComparer.Ordinal)
    {
        // transformers.TrainingArguments
        "overwrite_output_dir", "do_train", "do_eval", "do_predict", "prediction_loss_only", "per_gpu_train_batch_size",
        "per_gpu_eval_batch_size", "eval_accumulation_steps", "eval_delay", "torch_empty_cache_steps", "log_level",
        "log_level_replica", "log_on_each_node", "logging_dir", "logging_strategy", "logging_first_step", "logging_nan_inf_filter",
        "save_safetensors", "save_on_each_node", "save_only_model", "restore_callback_states_from_checkpoint", "no_cuda", "use_cpu",
        "use_mps_device", "data_seed", "jit_mode_eval", "use_ipex", "bf16", "fp16", "fp16_opt_level", "half_precision_backend",
        "bf16_full_eval", "fp16_full_eval", "tf32", "local_rank", "ddp_backend", "tpu_num_cores", "tpu_metrics_debug", "debug",
        "dataloader_drop_last", "dataloader_num_workers", "dataloader_prefetch_factor", "past_index", "run_name", "disable_tqdm",
        "remove_unused_columns", "label_names", "ignore_data_skip", "fsdp", "fsdp_min_num_params", "fsdp_config",
        "fsdp_transformer_layer_cls_to_wrap", "accelerator_config", "deepspeed", "label_smoothing_factor", "optim_args", "adafactor",
        "group_by_length", "length_column_name", "report_to", "ddp_find_unused_parameters", "ddp_bucket_cap_mb", "ddp_broadcast_buffers",
        "dataloader_pin_memory", "dataloader_persistent_workers", "skip_memory_metrics", "use_legacy_prediction_loop", "push_to_hub",
        "resume_from_checkpoint", "hub_model_id", "hub_strategy", "hub_token", "hub_private_repo", "hub_always_push",
        "gradient_checkpointing_kwargs", "include_inputs_for_metrics", "eval_do_concat_batches", "fp16_backend", "evaluation_strategy",
        "push_to_hub_model_id", "push_to_hub_organization", "push_to_hub_token", "mp_parameters", "auto_find_batch_size",
        "full_determinism", "torchdynamo", "ray_scope", "ddp_timeout", "torch_compile", "torch_compile_backend", "torch_compile_mode",
        "dispatch_batches", "split_batches", "include_tokens_per_second", "include_num_input_tokens_seen", "neftune_noise_alpha",
        "optim_target_modules", "batch_eval_metrics", "eval_on_start", "eval_use_gather_object",
        // TRL's SFTConfig
        "dataset_text_field", "dataset_kwargs", "dataset_num_proc", "dataset_batch_size", "model_init_kwargs", "eval_packing",
        "num_of_sequences", "chars_per_token", "padding_free", "packing_strategy", "pad_to_multiple_of", "eos_token", "pad_token",
        "use_liger", "use_liger_kernel", "activation_offloading", "dataset_test_split", "dataset_train_split",
    };

    /// <summary>A hint for some unsupported fields.</summary>
    public static string Hint(string field) => field switch
    {
        "evaluation_strategy" => " (transformers' old name: use eval_strategy)",
        "resume_from_checkpoint" => " (use --resume on the command line)",
        "bf16" or "fp16" or "tf32" => " (training runs in float32)",
        "logging_strategy" or "logging_first_step" => " (logging is every logging_steps optimiser steps)",
        _ => "",
    };
}
