#!/usr/bin/env python3
"""Checks a saved text model's vocabulary against Keras' rule, recomputed here with numpy.

    python3 scripts/check-text-vocabulary.py data/imdb/train.tsv model.safetensors

The model file's __metadata__.text_vectorization (written by `lamina train` on text data) holds
the vocabulary Lamina adapted. This recomputes it the way Keras 3's TextVectorization does with
its defaults (lower_and_strip_punctuation, whitespace split): tf.strings.lower (ASCII only), the
regex [!"#$%&()\\*\\+,-\\./:;<=>?@\\[\\\\\\]^_`{|}~\\'] replaced by nothing, split on whitespace,
then IndexLookup.finalize_state's order, np.lexsort((tokens, counts))[::-1] cut to max_tokens - 2,
after "" and "[UNK]". Exits 1 on the first difference. (On the IMDB split with max_tokens 20000
the two are equal, entry for entry.)
"""
import collections
import json
import re
import struct
import sys

import numpy as np

PUNCTUATION = re.compile(rb'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']')
ESCAPES = {b"\\\\": b"\\", b"\\t": b"\t", b"\\n": b"\n", b"\\r": b"\r"}


def main(tsv, model):
    with open(model, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    config = json.loads(header["__metadata__"]["text_vectorization"])
    if config.get("standardize") != "lower_and_strip_punctuation" or config.get("split") != "whitespace":
        sys.exit("this check covers Keras' default standardize and split only")
    counts = collections.Counter()
    with open(tsv, "rb") as f:
        for line in f:
            text = line.rstrip(b"\n").split(b"\t", 1)[1]
            text = re.sub(rb"\\[\\tnr]", lambda m: ESCAPES[m.group(0)], text)
            counts.update(PUNCTUATION.sub(b"", text.lower()).split())
    counts.pop(b"", None)
    counts.pop(b"[UNK]", None)
    tokens = list(counts)
    order = np.lexsort((np.array(tokens), np.array([counts[t] for t in tokens])))[::-1]
    if config.get("max_tokens"):
        order = order[: config["max_tokens"] - 2]
    keras = ["", "[UNK]"] + [tokens[i].decode("utf-8", "surrogateescape") for i in order]
    lamina = config["vocabulary"]
    for i, (k, m) in enumerate(zip(keras, lamina)):
        if k != m:
            sys.exit(f"entry {i}: Keras' rule gives {k!r}, the model holds {m!r}")
    if len(keras) != len(lamina):
        sys.exit(f"Keras' rule gives {len(keras)} entries, the model holds {len(lamina)}")
    print(f"{model}: the {len(lamina)} vocabulary entries equal Keras' rule on {tsv}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
