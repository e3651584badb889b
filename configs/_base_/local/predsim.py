"""PredSim (Nøkland & Eidnes 2019; ``anokland/local-loss`` @ 7b3b40b
``train.py``, ALGORITHMS.md §4): L = (1 - beta) CE(pred) + beta L_sim with
beta = 0.99, the code's value (HPFF gives no PredSim hyper-parameters)."""
_base_ = './wrapper.py'

local_learning = dict(local=dict(method=dict(type='PredSim', beta=0.99)))
