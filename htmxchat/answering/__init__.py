"""Who answers, and with what: the model servers and their health, the models they offer, the
picker, per-chat settings and presets, naming, routing and the bots themselves.

The chat core receives one value per reply from here, a `ReplyPlan` (plan.py); the views, the
socket and the templates ask `Answering` (service.py) for labels, the picker and the selection
(docs/design.md, "Who answers").
"""
