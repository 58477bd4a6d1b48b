"""RepRadar: the synthetic-organisation simulator.

`simulator.simulate.simulate(SimConfig(...), out)` writes a sales organisation in the input
contract plus its hidden truth in `out/truth/`. Modules: params (every number), timeline, org,
channels (traits -> rates), engine (the day loop), expect (exact expectations), oracle, truth
(causes, CAUSE_TO_INTERVENTIONS, counterfactual effects), output (tables and files).
"""
