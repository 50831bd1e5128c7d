"""Training references made with the real PEFT 0.13.2, torch's AdamW and transformers' Trainer.

Run in the Python lab (see shared/tools/peft-lab):
    source /work/lab/env.sh && /usr/bin/python3 tools/training-reference/make_training_cases.py tests/fixtures/training

Writes OUT/base (a tiny random Llama), OUT/data.jsonl (pre-tokenised rows of equal length), and one
folder per case: initial_adapter/ (saved before training), training.json (the TrainingArguments,
in the field names PeftHost's `train` accepts), steps.json (per optimiser step: loss = the mean of
the micro-batches' mean losses, unrounded; learning_rate after the scheduler's step; grad_norm
before clipping) and final_adapter/.

Every case has batch x gradient_accumulation = the number of rows, so each optimiser step sees the
mean over all rows whatever order the Trainer's sampler picks, and the run can be reproduced by
another trainer. Dropout is 0 (its random masks cannot be reproduced across frameworks).
"""
import json, os, shutil, sys
import torch
import transformers.models.bert as _bert

# The lab has no compiled `tokenizers`; transformers' data collators import this name only.
setattr(_bert, 'BertTokenizerFast', type('BertTokenizerFast', (), {}))
from transformers import LlamaConfig, LlamaForCausalLM, Trainer, TrainingArguments  # noqa: E402
from peft import (IA3Config, LoraConfig, PeftModel, PromptTuningConfig, get_peft_model)  # noqa: E402

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)
cfg = LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                  initializer_range=0.2, attn_implementation='eager')
base_dir = os.path.join(out, 'base')
LlamaForCausalLM(cfg).save_pretrained(base_dir, safe_serialization=True)
for extra in ('generation_config.json',):
    p = os.path.join(base_dir, extra)
    if os.path.exists(p):
        os.remove(p)

ROWS, LENGTH = 4, 12
data = torch.randint(0, 128, (ROWS, LENGTH), generator=torch.Generator().manual_seed(3))
with open(os.path.join(out, 'data.jsonl'), 'w') as f:
    for row in data.tolist():
        f.write(json.dumps({'input_ids': row}) + '\n')


class RecordingTrainer(Trainer):
    """Records each micro-batch's mean loss, so step losses are known unrounded."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.micro_losses = []

    def compute_loss(self, model, inputs, return_outputs=False):
        loss = super().compute_loss(model, inputs, return_outputs)
        self.micro_losses.append(loss.item() if not return_outputs else loss[0].item())
        return loss


def perturb(model, names, scale, seed):
    # Factors that start at zero (LoRA's B) would give the other factor no gradient at step 1.
    with torch.no_grad():
        g = torch.Generator().manual_seed(seed)
        for n, p in model.named_parameters():
            if p.requires_grad and any(k in n for k in names):
                p.add_(torch.randn(p.shape, generator=g) * scale)


def run_case(name, peft_config, perturb_names, args):
    case = os.path.join(out, name)
    shutil.rmtree(case, ignore_errors=True)
    os.makedirs(case)
    torch.manual_seed(1)
    model = get_peft_model(LlamaForCausalLM.from_pretrained(base_dir), peft_config)
    perturb(model, perturb_names, 0.1, 2)
    model.save_pretrained(os.path.join(case, 'initial_adapter'))
    if peft_config.is_prompt_learning:
        pm = model  # PEFT 0.13.2 cannot load prompt learning as trainable: train the model get_peft_model made
    else:
        pm = PeftModel.from_pretrained(LlamaForCausalLM.from_pretrained(base_dir),
                                       os.path.join(case, 'initial_adapter'), is_trainable=True)
    ga = args['gradient_accumulation_steps']
    targs = TrainingArguments(output_dir=os.path.join(case, '_trainer'), report_to=[], use_cpu=True, save_strategy='no',
                              logging_steps=1, remove_unused_columns=False, **args)
    trainer = RecordingTrainer(model=pm, args=targs, train_dataset=[{'input_ids': r, 'labels': r.clone()} for r in data])
    trainer.train()
    shutil.rmtree(os.path.join(case, '_trainer'), ignore_errors=True)
    logs = [h for h in trainer.state.log_history if 'loss' in h]
    micro = trainer.micro_losses
    steps = []
    for i, h in enumerate(logs):
        loss = sum(micro[i * ga:(i + 1) * ga]) / ga  # transformers 4.44: the mean of the micro-batches' mean losses
        entry = {'step': h['step'], 'loss': loss, 'logged_loss': h['loss'], 'learning_rate': h['learning_rate']}
        if 'grad_norm' in h:
            entry['grad_norm'] = float(h['grad_norm'])
        steps.append(entry)
    json.dump({'steps': steps}, open(os.path.join(case, 'steps.json'), 'w'), indent=1)
    training = dict(args, logging_steps=1, save_strategy='no', shuffle=True)
    json.dump(training, open(os.path.join(case, 'training.json'), 'w'), indent=1, sort_keys=True)
    pm.save_pretrained(os.path.join(case, 'final_adapter'))
    print(name, [round(s['loss'], 5) for s in steps])


common = dict(per_device_train_batch_size=4, gradient_accumulation_steps=1, max_steps=5, learning_rate=1e-2,
              weight_decay=0.01, max_grad_norm=1.0, seed=42)

run_case('lora', LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=['q_proj', 'v_proj']),
         ['lora_B'], dict(common, lr_scheduler_type='linear'))
run_case('dora', LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=['q_proj', 'v_proj', 'o_proj'], use_dora=True),
         ['lora_B'], dict(common, lr_scheduler_type='cosine', warmup_steps=1))
run_case('rslora_mlp', LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, use_rslora=True, target_modules=['gate_proj', 'up_proj', 'down_proj']),
         ['lora_B'], dict(common, lr_scheduler_type='polynomial', lr_scheduler_kwargs={'power': 2.0, 'lr_end': 1e-4}, warmup_ratio=0.2))
run_case('ia3', IA3Config(target_modules=['k_proj', 'v_proj', 'down_proj'], feedforward_modules=['down_proj']),
         ['ia3_l'], dict(common, lr_scheduler_type='constant', learning_rate=3e-2))
run_case('prompt_tuning', PromptTuningConfig(task_type='CAUSAL_LM', num_virtual_tokens=4),
         [], dict(common, lr_scheduler_type='constant_with_warmup', warmup_steps=2, learning_rate=3e-2))
# The Trainer run: warm-up, linear schedule, gradient accumulation and clipping that bites.
run_case('trainer', LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=['q_proj', 'v_proj']),
         ['lora_B'], dict(per_device_train_batch_size=2, gradient_accumulation_steps=2, max_steps=6, learning_rate=2e-3,
                          lr_scheduler_type='linear', warmup_steps=2, weight_decay=0.01, max_grad_norm=0.05, seed=42))
