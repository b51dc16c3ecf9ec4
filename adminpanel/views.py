from django.shortcuts import render

from adminpanel.selectors import staff_overview_get


def home(request):
    # accounts.middleware.StaffAccessMiddleware admits only staff who passed their second factor.
    return render(request, "adminpanel/home.html", {"overview": staff_overview_get()})
