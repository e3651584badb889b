# Strip the local-learning auxiliary modules from a checkpoint, leaving the
# plain task model (mmseg / mmpretrain / mmdet alike: the keys decide).
# Older checkpoints hold them as `local_learner.*` state-dict keys, newer ones
# beside the state dict; both are removed.
import argparse
import os
import os.path as osp
import sys

import mmlocal  # noqa: F401,I001  (weights-only allow-list for Runner checkpoints)
import torch

from mmlocal.apis import LOCAL_LEARNER_KEY, LOCAL_LEARNER_PREFIX, strip_local_learner

BESIDE_STATE_DICT = (LOCAL_LEARNER_KEY, f'optimizer.{LOCAL_LEARNER_KEY}')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Remove the auxiliary local-learning modules '
        f'({LOCAL_LEARNER_PREFIX}*) and the training state from a checkpoint')
    parser.add_argument('src', help='checkpoint of a locally trained model')
    parser.add_argument('dst', help='where to save the stripped checkpoint')
    parser.add_argument(
        '--keep-training-state',
        action='store_true',
        help='keep `optimizer`, `param_schedulers` and `message_hub`')
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    # weights-only: a crafted checkpoint cannot run code here
    checkpoint = torch.load(args.src, map_location='cpu', weights_only=True)
    if not isinstance(checkpoint, dict):
        print(f'error: {args.src} holds a {type(checkpoint).__name__}, '
              'not a checkpoint dict', file=sys.stderr)
        return 2
    removed = strip_local_learner(checkpoint, args.keep_training_state)
    heads = [k for k in removed if k.startswith(LOCAL_LEARNER_PREFIX)]
    entries = [k for k in removed if k in BESIDE_STATE_DICT]
    others = [k for k in removed
              if not k.startswith(LOCAL_LEARNER_PREFIX) and k not in BESIDE_STATE_DICT]
    print(f'removed {len(heads)} {LOCAL_LEARNER_PREFIX}* parameters/buffers')
    groups = {}  # first three name parts -> count, to keep the list short
    for key in heads:
        group = '.'.join(key.split('.')[:3])
        groups[group] = groups.get(group, 0) + 1
    for group, count in groups.items():
        print(f'  {group}.* ({count})')
    if entries:
        print(f'removed local-learner state: {", ".join(entries)}')
    if others:
        print(f'removed training state: {", ".join(others)}')
    if osp.dirname(args.dst):
        os.makedirs(osp.dirname(args.dst), exist_ok=True)
    torch.save(checkpoint, args.dst)
    print(f'saved {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
