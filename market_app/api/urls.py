from django.urls import path

from market_app.api import accounts, datasets, journal, reports, views

urlpatterns = [
    path("instruments/", views.InstrumentListView.as_view(), name="market-instruments"),
    path("orders/", views.OrderListView.as_view(), name="market-orders"),
    # Any segment: the view answers a malformed order ID with 400, not the 404 of an unknown one.
    path("orders/<str:order_id>/cancel/", views.OrderCancelView.as_view(), name="market-order-cancel"),
    path("orders/<str:order_id>/replace/", views.OrderReplaceView.as_view(), name="market-order-replace"),
    path("positions/", views.PositionListView.as_view(), name="market-positions"),
    path("fills/", views.FillListView.as_view(), name="market-fills"),
    path("account/", views.AccountView.as_view(), name="market-account"),
    path("account/limits/", views.AccountLimitsView.as_view(), name="market-account-limits"),
    path("candles/", views.CandleListView.as_view(), name="market-candles"),
]

# The account's journal, figures and reset (market_app.api.journal).
urlpatterns += [
    path("journal/orders/", journal.JournalOrdersView.as_view(), name="market-journal-orders"),
    path("journal/fills/", journal.JournalFillsView.as_view(), name="market-journal-fills"),
    path("journal/equity/", journal.EquityView.as_view(), name="market-journal-equity"),
    path("journal/charges/", journal.JournalChargesView.as_view(), name="market-journal-charges"),
    path("journal/performance/", journal.PerformanceView.as_view(), name="market-journal-performance"),
    path("account/resets/", journal.ResetListView.as_view(), name="market-account-resets"),
    path("account/reset/", journal.AccountResetView.as_view(), name="market-account-reset"),
]

# The user's accounts (market_app.api.accounts). Any segment: a malformed id is a 400, not a 404.
urlpatterns += [
    path("accounts/", accounts.AccountListView.as_view(), name="market-accounts"),
    path("accounts/<str:account_id>/", accounts.AccountDetailView.as_view(), name="market-account-detail"),
    path("accounts/<str:account_id>/close/", accounts.AccountCloseView.as_view(), name="market-account-close"),
]

# Datasets of bars (market_app.api.datasets). Any segment: a malformed id is a 400, not a 404.
urlpatterns += [
    path("datasets/", datasets.DatasetListView.as_view(), name="market-datasets"),
    path("datasets/<str:dataset_id>/", datasets.DatasetDetailView.as_view(), name="market-dataset"),
]

# A replay run's report (market_app.api.reports).
urlpatterns += [
    path("simulators/<str:simulator_id>/report/", reports.ReportView.as_view(), name="market-simulator-report"),
]
