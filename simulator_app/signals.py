"""What the simulator app tells the apps above it (they connect in their AppConfig.ready()).

`simulator_ended` is sent inside the transaction in which a simulator became `stopped` or
`error`, so what a receiver writes (the market: cancel the user's open orders) commits with it.

The worker's life (simulator_app.worker.Worker sends these with `asend`, from its own loops, so
receivers are async and run in the worker's event loop; the market runs its part of a worker on
them: matching the worker's users' orders, the price feed, the equity samples):
"""

from __future__ import annotations

from django.dispatch import Signal

# sender: Simulator; user_id: int, status: str, reason: str
simulator_ended = Signal()

# sender: Worker; worker: Worker. Registered, before it takes any simulator.
worker_started = Signal()

# sender: Worker; worker: Worker, run: SimulationRun. It took a simulator (`worker.runs` holds it).
run_started = Signal()

# sender: Worker; worker: Worker, run: SimulationRun. The trader's clock settings reached the run
# (`run.clock` has applied them): a market of its own plays, pauses, steps or seeks.
clock_changed = Signal()

# sender: Worker; worker: Worker. After every lease renewal (SIMULATOR_LEASE_RENEW_MS).
leases_renewed = Signal()

# sender: Worker; worker: Worker, hand_over: bool. Its loops have stopped; its simulators are
# released after this returns (with hand_over) or left to their lapsing leases. The worker waits
# at most STOP_STEP_TIMEOUT_S for the receivers.
worker_stopping = Signal()
