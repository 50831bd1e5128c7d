"""The demo's rule task: upper-case a word of 4 random lower-case letters ("qkvo=" -> "QKVO").

    python3 tools/demo-task/make_uppercase_task.py Host/Cli/Demo

Writes uppercase.train.jsonl and uppercase.heldout.jsonl (prompt + completion rows; no held-out word
is a training word), from a fixed seed. A random-init model cannot do it (exact match ~0); an adapter
that learned the rule (look back 5 positions, map the letter) does it for words it never saw.
"""
import json, os, random, string, sys

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = random.Random(1234)
words = set()
while len(words) < 2600:
    words.add(''.join(rng.choice(string.ascii_lowercase) for _ in range(4)))
words = sorted(words)
rng.shuffle(words)
splits = {'train': words[:2500], 'heldout': words[2500:]}
for name, ws in splits.items():
    with open(os.path.join(out, f'uppercase.{name}.jsonl'), 'w') as f:
        for w in ws:
            f.write(json.dumps({'prompt': w + '=', 'completion': w.upper()}) + '\n')
print({k: len(v) for k, v in splits.items()})
