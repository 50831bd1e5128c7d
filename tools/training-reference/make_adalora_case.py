"""The AdaLoRA training reference: the real PEFT 0.13.2's rank allocation run by transformers' Trainer.

Run in the Python lab after make_training_cases.py (it reuses OUT/base and OUT/data.jsonl):
    source /work/lab/env.sh && /usr/bin/python3 tools/training-reference/make_adalora_case.py tests/fixtures/training

Writes OUT/adalora with the same layout as the other cases (initial_adapter/, training.json, steps.json,
final_adapter/) and rank_patterns.json: the rank pattern after every optimiser step that changed it.

The schedule is short (8 steps: tinit 2, tfinal 2, deltaT 2, init_r 4 to target_r 2), so the budget is
cut twice by the cubic schedule and once for good, then masked on the last step. update_and_allocate
runs in the Trainer's on_optimizer_step, after the optimiser step and before the gradients are zeroed,
with the steps completed so far (0 after the first), as PEFT's docstring loop does; the loss includes the
orthogonal regularisation (orth_reg_weight 0.5). total_step is left
unset in the config and given by the run (max_steps), as PeftHost's trainer does.
"""
import json, os, shutil, sys
import torch
import transformers.models.bert as _bert

# The lab has no compiled `tokenizers`; transformers' data collators import this name only.
setattr(_bert, 'BertTokenizerFast', type('BertTokenizerFast', (), {}))
from transformers import LlamaForCausalLM, Trainer, TrainerCallback, TrainingArguments  # noqa: E402
from peft import AdaLoraConfig, PeftModel, get_peft_model  # noqa: E402

out = sys.argv[1]
base_dir = os.path.join(out, 'base')
data = torch.tensor([json.loads(line)['input_ids'] for line in open(os.path.join(out, 'data.jsonl'))])
MAX_STEPS = 8


class RecordingTrainer(Trainer):
    """Records each micro-batch's mean loss (the orthogonal regularisation included), unrounded."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.micro_losses = []

    def compute_loss(self, model, inputs, return_outputs=False):
        loss = super().compute_loss(model, inputs, return_outputs)
        self.micro_losses.append(loss.item())
        return loss


class Allocate(TrainerCallback):
    """PEFT's update_and_allocate after each optimiser step, before zero_grad; records the rank patterns and
    the margin of each masking (the smallest gap between a triplet's score and the threshold)."""

    def __init__(self, model):
        self.model = model
        self.patterns = []

    def on_optimizer_step(self, args, state, control, **kwargs):
        tuner = self.model.base_model
        before = json.dumps(tuner.peft_config['default'].rank_pattern, sort_keys=True)
        tuner.update_and_allocate(state.global_step)
        pattern = tuner.peft_config['default'].rank_pattern
        if pattern is not None and json.dumps(pattern, sort_keys=True) != before:
            self.patterns.append({'after_step': state.global_step + 1,
                                  'rank_pattern': {k.replace('.default', ''): v for k, v in pattern.items()}})


case = os.path.join(out, 'adalora')
shutil.rmtree(case, ignore_errors=True)
os.makedirs(case)
torch.manual_seed(1)
# task_type CAUSAL_LM: PeftModelForCausalLM's forward goes through AdaLoraModel.forward, which adds the orthogonal
# regularisation to the loss (a bare PeftModel calls the base model directly and would leave it out).
config = AdaLoraConfig(task_type='CAUSAL_LM', init_r=4, target_r=2, tinit=2, tfinal=2, deltaT=2, beta1=0.85, beta2=0.85, orth_reg_weight=0.5,
                       lora_alpha=8, lora_dropout=0.0, target_modules=['q_proj', 'v_proj'])
model = get_peft_model(LlamaForCausalLM.from_pretrained(base_dir), config)
# E starts at zero, which gives A and B no gradient: perturb every factor.
with torch.no_grad():
    g = torch.Generator().manual_seed(2)
    for n, p in model.named_parameters():
        if p.requires_grad:
            p.add_(torch.randn(p.shape, generator=g) * 0.1)
model.save_pretrained(os.path.join(case, 'initial_adapter'))

pm = PeftModel.from_pretrained(LlamaForCausalLM.from_pretrained(base_dir), os.path.join(case, 'initial_adapter'), is_trainable=True)
pm.base_model.rankallocator.set_total_step(MAX_STEPS)
args = dict(per_device_train_batch_size=4, gradient_accumulation_steps=1, max_steps=MAX_STEPS, learning_rate=2e-2,
            weight_decay=0.01, max_grad_norm=1.0, seed=42, lr_scheduler_type='linear')
targs = TrainingArguments(output_dir=os.path.join(case, '_trainer'), report_to=[], use_cpu=True, save_strategy='no',
                          logging_steps=1, remove_unused_columns=False, **args)
allocate = Allocate(pm)
trainer = RecordingTrainer(model=pm, args=targs, train_dataset=[{'input_ids': r, 'labels': r.clone()} for r in data],
                           callbacks=[allocate])
trainer.train()
shutil.rmtree(os.path.join(case, '_trainer'), ignore_errors=True)

logs = [h for h in trainer.state.log_history if 'loss' in h]
steps = []
for i, h in enumerate(logs):
    entry = {'step': h['step'], 'loss': trainer.micro_losses[i], 'logged_loss': h['loss'], 'learning_rate': h['learning_rate'],
             'grad_norm': float(h['grad_norm'])}
    steps.append(entry)
json.dump({'steps': steps}, open(os.path.join(case, 'steps.json'), 'w'), indent=1)
json.dump({'rank_patterns': allocate.patterns}, open(os.path.join(case, 'rank_patterns.json'), 'w'), indent=1, sort_keys=True)
json.dump(dict(args, logging_steps=1, save_strategy='no', shuffle=True), open(os.path.join(case, 'training.json'), 'w'), indent=1, sort_keys=True)
pm.save_pretrained(os.path.join(case, 'final_adapter'))
print('adalora', [round(s['loss'], 5) for s in steps])
for p in allocate.patterns:
    print(p['after_step'], {k.split('layers.')[1]: [int(b) for b in v] for k, v in p['rank_pattern'].items()})
