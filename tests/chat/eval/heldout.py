"""HELD-OUT evaluation questions: written before the agent was tuned, and never tuned on.

Asked at world.NOW = Wednesday 2025-03-12 10:00 New York time; the data ends on 2025-03-02.
"""

from __future__ import annotations

from tests.chat.eval.items import Q

P, D, F, B, T, E, OPT = (
    "get_programs", "get_program_details", "predict_values", "get_best_model", "analyze_trends", "export_data",
    "optimize_schedule",
)  # fmt: skip
L3M = {"since": "2024-12-12", "until": "2025-03-12"}
FEB = {"since": "2025-02-01", "until": "2025-02-28"}

ITEMS = [
    # rankings, lists and group aggregates
    Q("top 5 shows by rating last 3 months", (P, {"target": "rating", "n": 5, **L3M}), facts=("2024-12-12", "Night Watch (NWT001)")),
    Q("what were our three lowest rated programmes in January?", (P, {"target": "rating", "n": 3, "ascending": True, "since": "2025-01-01", "until": "2025-01-31"}), facts=("INJ012", "Cartoon Corner (CCN008)", "Morning Brew (MBR002)")),
    Q("bottom 2 dramas by revenue", (P, {"target": "revenue", "n": 2, "ascending": True, "genre": "drama"}), facts=("City Lights (CTL005): {mean:CTL005:revenue}", "Night Watch (NWT001): {mean:NWT001:revenue}")),
    Q("Which channel made the most money last month?", (P, {"group_by": "channel", "target": "revenue", **FEB}), facts=("{group:channel:revenue:wtv:2025-02-01:2025-02-28}", "2025-02-01")),
    Q("rank the genres by audience", (P, {"group_by": "genre", "target": "audience"}), facts=("{group:genre:audience:drama}", "{group:genre:audience:sports}")),
    Q("top ten comedies on Westside", (P, {"target": "rating", "n": 10, "genre": "comedy", "channel": "wtv"}), facts=("Laugh Track (LTR003): {mean:LTR003:rating}",)),
    Q("highest engagement shows on channel 2", (P, {"target": "engagement", "channel": "nvt"}), facts=("Saturday Sports Night (SSN006)", "nvt")),
    Q("best performing programmes this year by viewers", (P, {"target": "audience", "since": "2025-01-01", "until": "2025-03-12"}), facts=("2025-01-01",)),
    Q("worst 4 programs for ad revenue on kbs", (P, {"target": "revenue", "n": 4, "ascending": True, "channel": "kbs"}), facts=("Cartoon Corner (CCN008): {mean:CCN008:revenue}",)),
    Q("Which documentaries rate best?", (P, {"target": "rating", "genre": "documentary"}), facts=("Wild Planet (WLD007): {mean:WLD007:rating}",)),
    Q("top 5 shows by rating last week", (P, {"target": "rating", "n": 5, "since": "2025-03-03", "until": "2025-03-09"}), facts=("2025-03-02",)),
    Q("list the game shows", (P, {"genre": "game"}), facts=("Quiz Masters (QZM010)",)),
    Q("what programmes run on Northview TV?", (P, {"channel": "nvt"}), facts=("Wild Planet (WLD007)", "Quiz Masters (QZM010)")),
    Q("average rating per channel in Q4 2024", (P, {"group_by": "channel", "target": "rating", "since": "2024-10-01", "until": "2024-12-31"}), facts=("{group:channel:rating:kbs:2024-10-01:2024-12-31}",)),
    Q("which genre brings the most revenue on wtv", (P, {"group_by": "genre", "target": "revenue", "channel": "wtv"}), facts=("{group:genre:revenue:drama}",)),
    Q("top twelve by audience", (P, {"target": "audience", "n": 12})),
    Q("show me the 3 most watched programmes in december", (P, {"target": "audience", "n": 3, "since": "2024-12-01", "until": "2024-12-31"}), facts=("Night Watch (NWT001)",)),
    Q("lowest engagement sports programs", (P, {"target": "engagement", "ascending": True, "genre": "sports"}), facts=("Saturday Sports Night (SSN006): {mean:SSN006:engagement}",)),
    Q("top 3 prgrams by revnue", (P, {"target": "revenue", "n": 3})),
    Q("shw me the highest rated comedy shows on westside tv", (P, {"target": "rating", "genre": "comedy", "channel": "wtv"}), facts=("Laugh Track",)),
    Q("which cartoons get the biggest audiences", (P, {"target": "audience", "genre": "animation"}), facts=("Cartoon Corner (CCN008): {mean:CCN008:audience}",)),
    Q("what's the average revenue by channel", (P, {"group_by": "channel", "target": "revenue"}), facts=("{group:channel:revenue:nvt}",)),
    Q("top programs by audience next month", (P, {"target": "audience", "since": "2025-04-01", "until": "2025-04-30"}), facts=("2025-03-02",)),
    # one program's details
    Q("how's Night Watch doing", (D, {"program": "NWT001"}), facts=("Night Watch (NWT001", "{mean:NWT001:rating}")),
    Q("tell me about citylights", (D, {"program": "CTL005"}), facts=("{mean:CTL005:revenue}",)),
    Q("give me the numbers for Quiz Master", (D, {"program": "QZM010"}), facts=("{mean:QZM010:audience}",)),
    Q("wild plannet stats", (D, {"program": "WLD007"}), facts=("{mean:WLD007:engagement}",)),
    Q("info on SSN006", (D, {"program": "SSN006"}), facts=("Saturday Sports Night",)),
    Q("How did Island Life do last month?", (D, {"program": "ISL011", "start": "2025-02-01", "end": "2025-02-28"}), facts=("{mean:ISL011:rating:2025-02-01:2025-02-28}",)),
    # predictions with slots
    Q("forcast revenue for Night Watch friday 9pm", (F, {"program": "NWT001", "target": "revenue", "start": "2025-03-14T21:00:00-04:00"}), facts=("{pred:NWT001:revenue}", "2025-03-14 21:00")),
    Q("what rating will City Lights get tonight?", (F, {"program": "CTL005", "target": "rating", "start": "2025-03-12T21:00:00-04:00"}), facts=("{pred:CTL005:rating}", "2025-03-12 21:00")),
    Q("predict audience for Laugh Track next week", (F, {"program": "LTR003", "target": "audience", "start": "2025-03-18T20:00:00-04:00"}), facts=("2025-03-18 20:00",)),
    Q("expected engagement for Saturday Sports Night this saturday in prime time", (F, {"program": "SSN006", "target": "engagement", "start": "2025-03-15T20:00:00-04:00"})),
    Q("How many viewers will Morning Brew pull tomorrow at 7am?", (F, {"program": "MBR002", "target": "audience", "start": "2025-03-13T07:00:00-04:00"}), facts=("{pred:MBR002:audience}",)),
    Q("projected revenue of QZM010 on March 20 at 8:30pm", (F, {"program": "QZM010", "target": "revenue", "start": "2025-03-20T20:30:00-04:00"})),
    Q("predict everything for Wild Planet", (F, {"program": "WLD007", "target": "all"}), facts=("{pred:WLD007:rating}", "{pred:WLD007:revenue}")),
    Q("what would Late Talk with Sam rate if we moved it to 10pm on Thursday", (F, {"program": "LTS009", "target": "rating", "start": "2025-03-13T22:00:00-04:00"})),
    Q("predict rating for Island Life on channel 1 sunday 8pm", (F, {"program": "ISL011", "target": "rating", "start": "2025-03-16T20:00:00-04:00", "channel": "kbs"}), facts=("kbs",)),
    Q("whats the predicted revenue for night watch", (F, {"program": "NWT001", "target": "revenue"}), facts=("{pred:NWT001:revenue}",)),
    Q("forecast the ratings for Cartoon Corner this Saturday morning", (F, {"program": "CCN008", "target": "rating", "start": "2025-03-15T08:00:00-04:00"})),
    # comparisons
    Q("compare Night Watch and City Lights", (D, {"program": "NWT001"}), (D, {"program": "CTL005"}), facts=("{mean:NWT001:rating}", "{mean:CTL005:rating}")),
    Q("Night Watch vs Laugh Track on revenue", (D, {"program": "NWT001"}), (D, {"program": "LTR003"}), facts=("{mean:NWT001:revenue}", "{mean:LTR003:revenue}")),
    Q("compare predicted audience for Quiz Masters and Wild Planet on Thursday 7:30pm", (F, {"program": "QZM010", "target": "audience", "start": "2025-03-13T19:30:00-04:00"}), (F, {"program": "WLD007", "target": "audience", "start": "2025-03-13T19:30:00-04:00"}), facts=("{pred:QZM010:audience}", "{pred:WLD007:audience}")),
    Q("how do morning brew and cartoon corner compare in engagement last month", (D, {"program": "MBR002", "start": "2025-02-01", "end": "2025-02-28"}), (D, {"program": "CCN008", "start": "2025-02-01", "end": "2025-02-28"}), facts=("{mean:MBR002:engagement:2025-02-01:2025-02-28}", "{mean:CCN008:engagement:2025-02-01:2025-02-28}")),
    # trends
    Q("is City Lights trending up?", (T, {"program": "CTL005", "target": "rating"}), facts=("(up)",)),
    Q("monthly revenue trend for dramas over the last 6 months", (T, {"genre": "drama", "target": "revenue", "period": "month", "start": "2024-09-12", "end": "2025-03-12"})),
    Q("how has Morning Brew's audience changed since january", (T, {"program": "MBR002", "target": "audience", "start": "2025-01-01"}), facts=("(down)",)),
    Q("weekly engagement trend on channel 3", (T, {"channel": "wtv", "target": "engagement", "period": "week"})),
    Q("are comedies declining?", (T, {"genre": "comedy", "target": "rating"}), facts=("(down)",)),
    Q("ratings trend for the sport genre by month", (T, {"genre": "sports", "period": "month", "target": "rating"})),
    # models
    Q("which model is best at predicting revenue", (B, {"target": "revenue"}), facts=("xgboost", "R2 0.873")),
    Q("what drives audience numbers?", (B, {"target": "audience"}), facts=("daypart",)),
    Q("most important factors for engagement", (B, {"target": "engagement"}), facts=("genre",)),
    Q("whats the most accurate model for ratings", (B, {"target": "rating"}), facts=("xgboost",)),
    # exports
    Q("export drama airings to csv", (E, {"dataset": "airings", "format": "csv", "filters": {"genre": "drama"}}), facts=("/api/v1/exports/",)),
    Q("download last month's kbs data as a spreadsheet", (E, {"format": "xlsx", "filters": {"channel": "kbs", "start": "2025-02-01", "end": "2025-02-28"}})),
    Q("I need the programme list in json", (E, {"dataset": "programs", "format": "json"})),
    Q("export Night Watch airings for Q4 2024 to CSV", (E, {"format": "csv", "filters": {"program": "NWT001", "start": "2024-10-01", "end": "2024-12-31"}})),
    # schedule optimisation
    Q("optimise prime time on Westside for Friday", (OPT, {"channel": "wtv", "daypart": "prime_time", "date": "2025-03-14"}), facts=("Nothing was saved",)),
    Q("build me a late night schedule for channel 1 tomorrow", (OPT, {"channel": "kbs", "daypart": "late_night", "date": "2025-03-13"})),
    Q("optimize the daytime lineup on 2025-03-20", (OPT, {"daypart": "daytime", "date": "2025-03-20"})),
    # several intents in one question
    Q("top 3 dramas by revenue and export them to excel", (P, {"target": "revenue", "n": 3, "genre": "drama"}), (E, {"format": "xlsx", "filters": {"genre": "drama"}}), facts=("Night Watch (NWT001)", "/api/v1/exports/")),
    Q("predict rating for Night Watch on Friday at 9pm and tell me which model does it", (F, {"program": "NWT001", "target": "rating", "start": "2025-03-14T21:00:00-04:00"}), (B, {"target": "rating"}), facts=("{pred:NWT001:rating}", "xgboost")),
    Q("show the revenue trend for Laugh Track, then predict its revenue for next Tuesday 8pm", (T, {"program": "LTR003", "target": "revenue"}), (F, {"program": "LTR003", "target": "revenue", "start": "2025-03-18T20:00:00-04:00"})),
    Q("what are the best drama shows, and what drives their ratings?", (P, {"genre": "drama", "target": "rating"}), (B, {"target": "rating"})),
    # follow-ups: inherit only when it is one
    Q("and its revenue forecast?", (F, {"program": "NWT001", "target": "revenue"}), before=("tell me about Night Watch",), facts=("Night Watch",)),
    Q("and for revenue?", (F, {"program": "CTL005", "target": "revenue", "start": "2025-03-14T21:00:00-04:00"}), before=("predict rating for City Lights on Friday 9pm",), facts=("City Lights",)),
    Q("what about comedies?", (P, {"genre": "comedy", "target": "rating", "n": 5}), before=("top 5 dramas by rating",)),
    Q("top 5 programmes by revenue", (P, {"target": "revenue", "n": 5}), before=("top 5 dramas by rating on kbs",), absent=("genre", "channel")),
    Q("how about monthly?", (T, {"program": "WLD007", "period": "month"}), before=("show the rating trend for Wild Planet",)),
    Q("revenue", (B, {"target": "revenue"}), before=("top 3 dramas on kbs", "which model is best?")),
    Q("list programs", (P, {}), before=("top 3 dramas on kbs", "which model is best?", "rating"), absent=("genre", "channel")),
    # writes the agent cannot do
    Q("delete all programs", facts=("I can't change data",)),
    Q("please remove Night Watch from the database", facts=("I can't change data",)),
    Q("rename City Lights to City Nights", facts=("I can't change data",)),
    # what could not be used is named
    Q("top 5 programs by rating in 4K", (P, {"target": "rating", "n": 5}), facts=("4K",)),
    Q("predict revenue for Night Watch among women 18-49", (F, {"program": "NWT001", "target": "revenue"}), facts=("women 18-49",)),
    # clarifications
    Q("predict the revenue", facts=("Which program",)),
    Q("hi there", facts=("?",)),
]  # fmt: skip
