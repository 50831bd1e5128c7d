"""Corpus BLEU-4 references from NLTK (Debian's python3-nltk 3.8), whose method3 smoothing is
sacreBLEU's default "exp" (NIST geometric sequence), on white-space tokens:

    /usr/bin/python3 tools/training-reference/make_bleu_cases.py tests/fixtures/training

Cases keep every hypothesis at least 4 tokens long and at least one unigram matching, where NLTK
and sacreBLEU also agree (NLTK counts a denominator of 1 for a too-short hypothesis and returns 0
when no unigram matches; sacreBLEU does neither). Scores are written on sacreBLEU's 0..100 scale.
"""
import json, os, sys
from nltk.translate.bleu_score import SmoothingFunction, corpus_bleu

out = sys.argv[1]
cases = [
    (["the cat sat on the mat", "a quick brown fox jumps"], ["the cat sat on the mat", "a quick brown fox jumps"]),
    (["the cat sat on a mat today", "a fast brown fox jumped over"], ["the cat sat on the mat", "a quick brown fox jumps over the dog"]),
    (["one two three four five", "six seven eight nine"], ["one two three four five six", "six seven ten nine eleven"]),
    (["w x y z", "a b c d e f g"], ["w x q z", "a b c d e f g h i j"]),
    (["Q K V O", "HELLO WORLD FROM HERE NOW"], ["Q K V E", "HELLO WORLD FROM THERE NOW"]),
]
result = []
for hyps, refs in cases:
    score = corpus_bleu([[r.split()] for r in refs], [h.split() for h in hyps], smoothing_function=SmoothingFunction().method3)
    result.append({'hypotheses': hyps, 'references': refs, 'bleu': 100 * score})
json.dump(result, open(os.path.join(out, 'bleu.json'), 'w'), indent=1)
print([round(r['bleu'], 4) for r in result])
