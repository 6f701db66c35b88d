"""Where the units of a sweep run: one `Launcher` seam between `owlore-bench run` and the machines.

- local (launch/local.py, the default): in this process, one unit after another; under torchrun
  (`owlore-bench run CONFIG --nproc N`) every unit is trained data parallel on N processes.
- submitit (launch/submitit_jobs.py): one cluster job per unit (method x seed) through submitit, the unit chosen
  the way `--only method=M,seed=S` chooses it; preempted or timed-out jobs requeue and resume.
- launch/torchrun.py: `--nproc N` re-runs the command under torchrun.
- launch/records.py: job.json, the record of a unit's cluster job in the results store.

This package imports submitit only when the submitit launcher is asked for.
"""
