"""References for the training settings, made with transformers (the lab's commit 50c3ba88):

    source /work/lab/env.sh && /usr/bin/python3 tools/training-reference/make_schedule_cases.py tests/fixtures/training

schedules.json: for each lr_scheduler_type, the learning rate after 0, 1, ... scheduler steps
(get_scheduler over torch's AdamW, 12 training steps, 3 warm-up steps, lr 1e-3).
defaults.json: TrainingArguments' defaults of the fields PeftHost accepts.
"""
import dataclasses, json, os, sys
import torch
from transformers import TrainingArguments
from transformers.optimization import get_scheduler

out = sys.argv[1]
cases = [
    ('linear', {}), ('cosine', {}), ('cosine', {'num_cycles': 1.5}), ('cosine_with_restarts', {'num_cycles': 2}),
    ('polynomial', {'power': 2.0, 'lr_end': 1e-5}), ('constant', {}), ('constant_with_warmup', {}),
    ('inverse_sqrt', {}), ('cosine_with_min_lr', {'min_lr_rate': 0.1}),
    ('cosine_with_min_lr', {'min_lr': 2e-4}), ('warmup_stable_decay', {'num_stable_steps': 3, 'num_decay_steps': 4, 'min_lr_ratio': 0.05}),
]
result = []
for name, kwargs in cases:
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([p], lr=1e-3)
    sched = get_scheduler(name, opt, num_warmup_steps=3, num_training_steps=12, scheduler_specific_kwargs=dict(kwargs))
    rates = [sched.get_last_lr()[0]]
    for _ in range(14):
        opt.step()
        sched.step()
        rates.append(sched.get_last_lr()[0])
    result.append({'lr_scheduler_type': name, 'lr_scheduler_kwargs': kwargs, 'learning_rate': 1e-3, 'warmup_steps': 3,
                   'num_training_steps': 12, 'rates': rates})
json.dump(result, open(os.path.join(out, 'schedules.json'), 'w'), indent=1)

accepted = ['num_train_epochs', 'max_steps', 'per_device_train_batch_size', 'per_device_eval_batch_size', 'gradient_accumulation_steps',
            'learning_rate', 'weight_decay', 'adam_beta1', 'adam_beta2', 'adam_epsilon', 'optim', 'max_grad_norm', 'lr_scheduler_type',
            'lr_scheduler_kwargs', 'warmup_steps', 'warmup_ratio', 'logging_steps', 'eval_strategy', 'eval_steps', 'save_strategy',
            'save_steps', 'save_total_limit', 'load_best_model_at_end', 'metric_for_best_model', 'greater_is_better', 'seed',
            'gradient_checkpointing']
fields = {f.name: f.default for f in dataclasses.fields(TrainingArguments)}
defaults = {}
for k in accepted:
    v = fields[k]
    if v is dataclasses.MISSING:
        v = None
    if hasattr(v, 'value'):
        v = v.value  # enums (IntervalStrategy, SchedulerType, OptimizerNames)
    defaults[k] = v
defaults['lr_scheduler_kwargs'] = {}
json.dump(defaults, open(os.path.join(out, 'defaults.json'), 'w'), indent=1, sort_keys=True)
print(json.dumps(defaults))
