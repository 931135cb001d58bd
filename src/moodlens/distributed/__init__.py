"""moodlens past one machine, on a Ray cluster (``pip install 'moodlens[ray]'``).

``cluster``: start or join a cluster, with one-line errors (:class:`~moodlens.distributed.cluster.ClusterError`).
``photos``: photo archives through a Ray Data pipeline with one Analyzer per actor.

No module here imports Ray until a function needs it, so moodlens without the extra imports them fine.
"""
