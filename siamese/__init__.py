"""sigverify: the Siamese signature network, its preprocessing, training and evaluation.

On Linux, TensorFlow (2.21) turns its oneDNN kernels on by itself only on CPUs with neural-network
instructions (AVX-512 VNNI or BF16, AVX-VNNI, AMX). On an AVX2-only CPU it runs without them, and a
training step takes about twice as long (README, "Performance"); the machine the shipped model was
trained and measured on had them on. So they are asked for here, before any TensorFlow import; a
``TF_ENABLE_ONEDNN_OPTS`` already in the environment (0 turns them off) wins.
"""

import os

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
