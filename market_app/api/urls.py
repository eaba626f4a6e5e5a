from django.urls import path

from market_app.api import views

urlpatterns = [
    path("instruments/", views.InstrumentListView.as_view(), name="market-instruments"),
    path("orders/", views.OrderListView.as_view(), name="market-orders"),
    path("orders/<uuid:order_id>/cancel/", views.OrderCancelView.as_view(), name="market-order-cancel"),
    path("orders/<uuid:order_id>/replace/", views.OrderReplaceView.as_view(), name="market-order-replace"),
    path("positions/", views.PositionListView.as_view(), name="market-positions"),
    path("fills/", views.FillListView.as_view(), name="market-fills"),
    path("account/", views.AccountView.as_view(), name="market-account"),
    path("candles/", views.CandleListView.as_view(), name="market-candles"),
]
