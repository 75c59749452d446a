"""Data-parallel training measured with ``DistributedDataParallel``, launched through torchrun.

``adapterdrop ddp`` (:mod:`adapterdrop.commands.ddp`) writes a :class:`~adapterdrop.distributed.job.DDPJob`
and starts ``torch.distributed.run`` (torchrun, the elastic launcher) on it
(:mod:`~adapterdrop.distributed.launch`); every rank runs :mod:`~adapterdrop.distributed.worker`:

- :mod:`~adapterdrop.distributed.team` joins the process group and makes one sub-group per measured world
  size (ranks 0..w-1), so that world sizes 1..N are measured in one launch, interleaved, and their ratios
  (scaling efficiency) come from one run;
- :mod:`~adapterdrop.distributed.wrap` wraps a step built by :func:`adapterdrop.measure.prepare.prepare_step`
  in DDP (one wrapper per drawn value for robust AdapterDrop, or ``find_unused_parameters``), with the
  same step without communication and the communication alone beside it;
- :mod:`~adapterdrop.distributed.hooks` counts the bytes every step all-reduces (a DDP communication hook);
- :mod:`~adapterdrop.distributed.checks` proves the step is correct before it is timed (gradients agree
  across ranks and equal the mean of the ranks' own gradients);
- :mod:`~adapterdrop.distributed.timing` times every callable in rotated rounds, all ranks in step;
- :mod:`~adapterdrop.distributed.records` turns the samples into records; rank 0 appends them.

The method and every field: docs/distributed.md.
"""
