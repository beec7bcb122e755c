"""Development evaluation questions (tuned on). Same world and clock as heldout.py:
Wednesday 2025-03-12 10:00 New York time; the data ends on 2025-03-02."""

from __future__ import annotations

from tests.chat.eval.items import Q

P, D, F, B, T, E, OPT = (
    "get_programs", "get_program_details", "predict_values", "get_best_model", "analyze_trends", "export_data",
    "optimize_schedule",
)  # fmt: skip

ITEMS = [
    # rankings, lists and groups
    Q("top 5 programs by rating", (P, {"target": "rating", "n": 5}), facts=("Night Watch (NWT001): {mean:NWT001:rating}",)),
    Q("Top ten shows by revenue over the past 90 days", (P, {"target": "revenue", "n": 10, "since": "2024-12-12", "until": "2025-03-12"})),
    Q("which programmes had the biggest audiences last month", (P, {"target": "audience", "since": "2025-02-01", "until": "2025-02-28"})),
    Q("5 worst rated shows", (P, {"target": "rating", "n": 5, "ascending": True}), facts=("INJ012",)),
    Q("least watched programs on Kappa", (P, {"target": "audience", "ascending": True, "channel": "kbs"}), facts=("Cartoon Corner (CCN008)",)),
    Q("rank channels by engagement", (P, {"group_by": "channel", "target": "engagement"}), facts=("{group:channel:engagement:kbs}",)),
    Q("revenue per genre since January", (P, {"group_by": "genre", "target": "revenue", "since": "2025-01-01"}), facts=("{group:genre:revenue:drama:2025-01-01:2025-03-12}",)),
    Q("which network has the best ratings this year?", (P, {"group_by": "channel", "target": "rating", "since": "2025-01-01", "until": "2025-03-12"})),
    Q("top 3 dramas", (P, {"target": "rating", "n": 3, "genre": "drama"}), facts=("Night Watch (NWT001)", "City Lights (CTL005)")),
    Q("Show me the top performing news programmes", (P, {"target": "rating", "genre": "news"}), facts=("Morning Brew (MBR002)",)),
    Q("list all shows on channel 3", (P, {"channel": "wtv"}), facts=("Laugh Track (LTR003)",)),
    Q("what's on kbs?", (P, {"channel": "kbs"}), facts=("Night Watch (NWT001)",)),
    Q("which reality shows do we have", (P, {"genre": "reality"}), facts=("Island Life (ISL011)",)),
    Q("highest rated program in february", (P, {"target": "rating", "n": 1, "since": "2025-02-01", "until": "2025-02-28"}), facts=("Night Watch (NWT001)",)),
    Q("bottom five by engagement on the second channel", (P, {"target": "engagement", "n": 5, "ascending": True, "channel": "nvt"})),
    Q("most popular shows", (P, {"target": "audience"})),
    Q("top 3 by rating this month", (P, {"target": "rating", "n": 3, "since": "2025-03-01", "until": "2025-03-12"})),
    Q("top comedies by ad revenue last quarter", (P, {"target": "revenue", "genre": "comedy", "since": "2024-10-01", "until": "2024-12-31"})),
    Q("audience by channel for the last 4 weeks", (P, {"group_by": "channel", "target": "audience", "since": "2025-02-12", "until": "2025-03-12"}), facts=("2025-02-12",)),
    Q("which genres perform worst on engagement", (P, {"group_by": "genre", "target": "engagement", "ascending": True})),
    Q("top 5 programs by rating next week", (P, {"target": "rating", "n": 5, "since": "2025-03-17", "until": "2025-03-23"}), facts=("2025-03-02",)),
    Q("top sports shows by viewrs", (P, {"target": "audience", "genre": "sports"})),
    Q("top 2 documentries by engagment", (P, {"target": "engagement", "n": 2, "genre": "documentary"}), facts=("Wild Planet (WLD007)",)),
    # details
    Q("Tell me about Morning Brew", (D, {"program": "MBR002"}), facts=("{mean:MBR002:rating}", "Morning Brew (MBR002")),
    Q("how is laugh track performing", (D, {"program": "LTR003"}), facts=("{mean:LTR003:audience}",)),
    Q("summary of Late Talk With Sam", (D, {"program": "LTS009"}), facts=("{mean:LTS009:revenue}",)),
    Q("stats for ISL011", (D, {"program": "ISL011"})),
    Q("how did Saturday Sports Night do in January", (D, {"program": "SSN006", "start": "2025-01-01", "end": "2025-01-31"}), facts=("{mean:SSN006:rating:2025-01-01:2025-01-31}",)),
    Q("night wacth numbers", (D, {"program": "NWT001"})),
    Q("What do we know about Cartoon Corner?", (D, {"program": "CCN008"})),
    Q("how is island life doing this year", (D, {"program": "ISL011", "start": "2025-01-01", "end": "2025-03-12"})),
    # predictions
    Q("predict revenue for City Lights next Wednesday at 9pm", (F, {"program": "CTL005", "target": "revenue", "start": "2025-03-19T21:00:00-04:00"}), facts=("2025-03-19 21:00", "{pred:CTL005:revenue}")),
    Q("what audience will Night Watch get this friday", (F, {"program": "NWT001", "target": "audience", "start": "2025-03-14T21:00:00-04:00"})),
    Q("forecast engagement for Island Life sunday night", (F, {"program": "ISL011", "target": "engagement", "start": "2025-03-16T20:00:00-04:00"})),
    Q("predicted ratings for Quiz Masters tomorrow", (F, {"program": "QZM010", "target": "rating", "start": "2025-03-13T19:30:00-04:00"}), facts=("{pred:QZM010:rating}",)),
    Q("if we air Wild Planet at 8pm on Saturday what revenue would it make", (F, {"program": "WLD007", "target": "revenue", "start": "2025-03-15T20:00:00-04:00"})),
    Q("estimate the audience for Late Talk with Sam tonight at 11:30pm", (F, {"program": "LTS009", "target": "audience", "start": "2025-03-12T23:30:00-04:00"})),
    Q("predict Morning Brew on 2025-03-17 at 7am", (F, {"program": "MBR002", "target": "all", "start": "2025-03-17T07:00:00-04:00"})),
    Q("projected rating for Night Watch in prime time tomorrow", (F, {"program": "NWT001", "target": "rating", "start": "2025-03-13T21:00:00-04:00"})),
    Q("how much revenue will Laugh Track bring in on Tuesday", (F, {"program": "LTR003", "target": "revenue", "start": "2025-03-18T20:00:00-04:00"})),
    Q("predict rating for city lights at 10pm", (F, {"program": "CTL005", "target": "rating", "start": "2025-03-12T22:00:00-04:00"})),
    Q("forecast viewers for Saturday Sports Night on 22 March", (F, {"program": "SSN006", "target": "audience", "start": "2025-03-22T19:00:00-04:00"})),
    Q("predict revenue for Quiz Masters on Westside Television next Thursday 8pm", (F, {"program": "QZM010", "target": "revenue", "channel": "wtv", "start": "2025-03-13T20:00:00-04:00"})),
    # comparisons
    Q("compare Morning Brew with Cartoon Corner", (D, {"program": "MBR002"}), (D, {"program": "CCN008"}), facts=("{mean:MBR002:rating}", "{mean:CCN008:rating}", " vs ")),
    Q("City Lights versus Island Life", (D, {"program": "CTL005"}), (D, {"program": "ISL011"})),
    Q("forecast revenue for Night Watch and City Lights on Friday 9pm", (F, {"program": "NWT001", "target": "revenue", "start": "2025-03-14T21:00:00-04:00"}), (F, {"program": "CTL005", "target": "revenue", "start": "2025-03-14T21:00:00-04:00"}), facts=("{pred:NWT001:revenue}", "{pred:CTL005:revenue}")),
    Q("compare the rating trends of Laugh Track and City Lights", (T, {"program": "LTR003", "target": "rating"}), (T, {"program": "CTL005", "target": "rating"})),
    # trends
    Q("rating trend for Night Watch", (T, {"program": "NWT001", "target": "rating", "period": "week"}), facts=("(up)",)),
    Q("is laugh track losing viewers?", (T, {"program": "LTR003", "target": "audience"}), facts=("(down)",)),
    Q("monthly engagement trend for Cartoon Corner", (T, {"program": "CCN008", "target": "engagement", "period": "month"})),
    Q("how has revenue on Northview changed over the last 3 months", (T, {"channel": "nvt", "target": "revenue", "start": "2024-12-12", "end": "2025-03-12"})),
    Q("is drama viewership growing?", (T, {"genre": "drama", "target": "audience"})),
    Q("week by week ratings for reality", (T, {"genre": "reality", "period": "week"})),
    Q("trend of Island Life revenue since december", (T, {"program": "ISL011", "target": "revenue", "start": "2024-12-01"})),
    # models
    Q("which model should I trust for audience predictions", (B, {"target": "audience"}), facts=("xgboost",)),
    Q("what affects ratings", (B, {"target": "rating"}), facts=("daypart",)),
    Q("feature importance for revenue", (B, {"target": "revenue"})),
    Q("how accurate is the engagement model", (B, {"target": "engagement"}), facts=("R2 0.873",)),
    Q("what are the key drivers of viewership", (B, {"target": "audience"})),
    # exports
    Q("export all airings to excel", (E, {"dataset": "airings", "format": "xlsx"})),
    Q("can I get Laugh Track's airings as a csv", (E, {"format": "csv", "filters": {"program": "LTR003"}})),
    Q("download comedy data for January in json", (E, {"format": "json", "filters": {"genre": "comedy", "start": "2025-01-01", "end": "2025-01-31"}})),
    Q("export the programme catalogue to a spreadsheet", (E, {"dataset": "programs", "format": "xlsx"})),
    Q("export nvt airings from the last 2 weeks", (E, {"filters": {"channel": "nvt", "start": "2025-02-26", "end": "2025-03-12"}})),
    # schedule
    Q("optimize tomorrow's prime time schedule on kbs", (OPT, {"channel": "kbs", "daypart": "prime_time", "date": "2025-03-13"})),
    Q("optimise the early morning lineup for Saturday on channel 2", (OPT, {"channel": "nvt", "daypart": "early_morning", "date": "2025-03-15"})),
    Q("best schedule for westside late night on 2025-03-21", (OPT, {"channel": "wtv", "daypart": "late_night", "date": "2025-03-21"})),
    # several intents
    Q("top 5 programs by audience and export them as csv", (P, {"target": "audience", "n": 5}), (E, {"format": "csv"})),
    Q("tell me about City Lights and predict its rating for Friday 9pm", (D, {"program": "CTL005"}), (F, {"program": "CTL005", "target": "rating", "start": "2025-03-14T21:00:00-04:00"})),
    Q("what drives revenue, and which shows earn the most?", (B, {"target": "revenue"}), (P, {"target": "revenue"})),
    Q("show Night Watch's trend then export its airings to excel", (T, {"program": "NWT001"}), (E, {"format": "xlsx", "filters": {"program": "NWT001"}})),
    # follow-ups
    Q("what about its audience?", (D, {"program": "WLD007"}), before=("tell me about Wild Planet",), facts=("Wild Planet",)),
    Q("and for Saturday Sports Night?", (F, {"program": "SSN006", "target": "rating"}), before=("predict rating for Night Watch",)),
    Q("same for revenue", (P, {"target": "revenue", "genre": "drama"}), before=("top dramas by rating",)),
    Q("and on wtv?", (P, {"target": "audience", "channel": "wtv", "n": 3}), before=("top 3 shows by audience",)),
    Q("show me comedy programs", (P, {"genre": "comedy"}), before=("top 5 dramas on kbs by revenue",), absent=("channel", "target")),
    Q("which model is best for audience", (B, {"target": "audience"}), before=("predict revenue for Night Watch",)),
    Q("Night Watch", (F, {"program": "NWT001", "target": "revenue"}), before=("predict revenue",), facts=("{pred:NWT001:revenue}",)),
    Q("top programs by revenue", (P, {"target": "revenue"}), before=("predict revenue", "Night Watch"), absent=("program", "genre", "channel")),
    # refusals
    Q("delete Laugh Track", facts=("I can't change data",)),
    Q("can you update the revenue for Night Watch to 100000", facts=("I can't change data",)),
    Q("wipe last week's airings", facts=("I can't change data",)),
    # ignored words and clarifications
    Q("top 5 dramas by rating in HD", (P, {"target": "rating", "n": 5, "genre": "drama"}), facts=("HD",)),
    Q("predict audience for City Lights for adults 25-54", (F, {"program": "CTL005", "target": "audience"}), facts=("adults 25-54",)),
    Q("forecast for tomorrow", facts=("Which program",)),
    Q("which model is best", facts=("which target",)),
    Q("thanks!", facts=("?",)),
]  # fmt: skip
